import Settings

/// `supervisor help COMMAND` and `supervisor COMMAND --help`: each command's own usage, not the global one.
enum CommandHelp {
    static let names = Program.allCases.filter(\.isCommand).map(\.rawValue)

    /// The usage, then the options as their declarations describe them.
    static func text(_ name: String) -> String? {
        guard let usage = usage(name), let program = Program(rawValue: name) else { return nil }
        if program == .budget { return usage }
        let options = SettingsHelp.options(of: program)
        return options.isEmpty ? usage : usage + "\n\nOPTIONS (environment variables in brackets):\n" + options
    }

    /// Exhaustive over `Program`, so that a new command cannot go without its help.
    static func usage(_ name: String) -> String? {
        guard let program = Program(rawValue: name) else { return nil }
        return switch program {
        case .budget:
            """
            USAGE: supervisor budget [options] [--check-db]

            Prints the connection budget: workers × replicas × (pool + overflow) against Postgres' max_connections
            minus the reserve, the cleanup's pool and a rolling restart's surge. Exit 0 when it fits, 1 when not.
            --check-db also asks the server (DATABASE_URL) for its max_connections and what is connected now:
            exit 69 when it cannot be reached, 78 when DATABASE_URL is malformed.

            OPTIONS (environment variables in brackets):
            \(SettingsHelp.options(of: .budget))
            """
        case .status:
            """
            USAGE: supervisor status [--json] [--control-socket PATH]

            Each slot's worker: pid, state (booting, ready, draining), generation, uptime, restarts, last heartbeat,
            memory (its process tree's RSS), open Postgres connections against its allotment, its STATUS=; the
            connection budget, the listener, the cleanup's last and next run. Exit 69 when no supervisor answers, or the socket is not owned by you or root.
            """
        case .scale:
            """
            USAGE: supervisor scale N [--control-socket PATH]

            Run N workers (\(Catalog.workers.range.lowerBound) to \(Catalog.workers.range.upperBound)). Exit 1 when refused (past the connection budget), 69 when no supervisor answers.
            """
        case .reload:
            """
            USAGE: supervisor reload [--no-wait] [--timeout DURATION] [--control-socket PATH]

            A rolling restart, as SIGHUP: each slot's new worker starts and is ready before the old one stops.
            It waits for the outcome: exit 0 once every slot runs the new generation, 1 when the restart was
            aborted (a new worker failed or was not ready in time; the old workers keep serving), with the
            reason, and 75 when it is still rolling after --timeout. A newer reload meanwhile is followed to
            its own outcome. --no-wait returns once the supervisor has accepted the request.
            """
        case .stop:
            """
            USAGE: supervisor stop [--no-wait] [--timeout DURATION] [--control-socket PATH]

            A graceful stop, as SIGTERM: the workers drain within the graceful timeout, then the supervisor exits 0.
            It waits until the supervisor is gone (exit 0), or 75 when it is still stopping after --timeout.
            --no-wait returns once the supervisor has accepted the request.
            """
        case .healthcheck:
            """
            USAGE: supervisor healthcheck [--bind ADDR] [--path PATH] [--timeout DURATION] [--control-socket PATH]

            Exit 0 when the supervisor has a ready worker and GET of the path answers 200, 1 otherwise, with one
            line saying why. The supervisor is asked first over its control socket: no ready worker is unhealthy
            at once, and it says where it listens (PORT=0, a socket from systemd). Without an answer there, the
            GET goes to BIND, or PORT. For a container's HEALTHCHECK, which has no curl.
            """
        case .schedule:
            """
            USAGE: supervisor schedule [--timezone ZONE] [--count N] [--after EPOCH] 'EXPRESSION'
                   supervisor schedule --batch < lines of: ZONE<TAB>EPOCH<TAB>EXPRESSION

            The next runs of a cleanup schedule, as the supervisor computes them (daylight saving time included).
            Exit 64 for an expression or zone the supervisor would refuse.
            """
        case .supervisor, .worker, .migrate, .createToken, .cleanup:
            nil
        }
    }

    /// `supervisor help settings`: every setting of the four programs, grouped by who reads it.
    static var settings: String {
        var sections: [String] = []
        for program in Program.allCases {
            let title: String = switch program {
            case .supervisor: "SUPERVISOR (flags and variables)"
            case .worker: "WORKER (variables; the supervisor checks them before it starts one)"
            case .cleanup: "CLEANUP (flags and variables)"
            case .migrate, .createToken: "WORKER \(program.rawValue.uppercased()) (flags)"
            default: "SUPERVISOR \(program.rawValue.uppercased()) (flags and variables)"
            }
            let body = switch program {
            case .supervisor: SettingsHelp.options(of: program) + "\n" + SettingsHelp.environment(of: program)
            case .worker, .cleanup: SettingsHelp.options(of: program) + "\n" + SettingsHelp.environment(of: program)
            default: SettingsHelp.options(of: program)
            }
            guard !Catalog.read(by: program).isEmpty else { continue }
            sections.append(title + "\n" + body)
        }
        return sections.joined(separator: "\n\n")
    }
}
