import SupervisorControl
import Testing

/// The control socket's words are written by the commands and read by the supervisor through one type.
@Suite("Control requests")
struct ControlRequestTests {
    @Test(arguments: [ControlRequest.ping, .status(json: false), .status(json: true), .scale(workers: 3), .reload, .lastReload, .stop])
    func everyRequestReadsBackAsItself(request: ControlRequest) {
        #expect(ControlRequest.parse(request.line) == .success(request))
    }

    @Test(arguments: ["stop now", "reload please", "status yaml", "status json x", "scale", "scale many", "scale 1 2", "scale +2", "scale 0x2", "", "pause"])
    func wrongWordsAreUsageErrors(line: String) {
        guard case .failure(let usage) = ControlRequest.parse(line) else {
            Issue.record("\(line) was taken")
            return
        }
        #expect(usage.message.hasPrefix("usage:") || usage.message.hasPrefix("unknown command"))
    }

    /// systemd's `RuntimeDirectory=a b` sets both paths, colon-separated: the control socket goes in the first.
    @Test func theControlSocketGoesInTheFirstOfSystemdsPaths() {
        #expect(ControlSocket.defaultPath(environment: ["RUNTIME_DIRECTORY": "/run/a:/run/b"]) == "/run/a/supervisor.sock")
    }
}
