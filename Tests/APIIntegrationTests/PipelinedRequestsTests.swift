import Foundation
import IntegrationSupport
import Synchronization
import Testing

/// Requests of 512 connections at once share the worker's Redis and Postgres connections (pipelined): every
/// request must still get its own answer.
@Suite("Pipelined requests end to end", .serialized)
struct PipelinedRequestsTests {
    /// Eight users with sixteen notes each, titled with a random tag; 512 clients at once each read notes of
    /// a user (with that user's token, or another's: 404), and every answer is checked against what was written.
    @Test func everyOneOf512ConcurrentClientsGetsItsOwnAnswer() throws {
        let worker = try WorkerProcess(environment: ["RATE_LIMIT_PER_MINUTE": "100000000"])
        var tokens: [String] = []
        var notes: [[(id: String, title: String)]] = []
        for user in 0..<8 {
            let token = try Services.token(user: Services.uniqueName("tagged\(user)"))
            tokens.append(token)
            var own: [(id: String, title: String)] = []
            for note in 0..<16 {
                let title = "u\(user)-n\(note)-\(UInt32.random(in: 0 ... .max))"
                let created = try worker.request("POST", "/v1/notes", token: token, body: #"{"title":"\#(title)","body":"b"}"#)
                own.append((try #require(jsonField(created.body, "id")), title))
            }
            notes.append(own)
        }
        let port = worker.port
        let mismatches = Mutex<[String]>([])
        let answered = Mutex(0)
        let group = DispatchGroup()
        for client in 0..<512 {
            group.enter()
            Thread.detachNewThread { [tokens, notes] in
                defer { group.leave() }
                for round in 0..<4 {
                    let owner = (client + round) % 8
                    let note = notes[owner][(client * 7 + round) % 16]
                    // One request in eight with another user's token: that note is not theirs.
                    let reader = client % 8 == 0 ? (owner + 1) % 8 : owner
                    let response = HTTPClient.request(port: port, method: "GET", path: "/v1/notes/\(note.id)",
                                                      headers: ["Authorization": "Bearer \(tokens[reader])"], timeout: 60)
                    let expected = reader == owner ? "200 \(note.title)" : "404"
                    let got: String
                    switch response {
                    case .success(let answer):
                        got = answer.status == 200 ? "200 \(jsonField(answer.body, "title") ?? answer.body)" : "\(answer.status)"
                    case .failure(let error):
                        got = "failed: \(error)"
                    }
                    answered.withLock { $0 += 1 }
                    if got != expected { mismatches.withLock { $0.append("client \(client) round \(round): \(got), expected \(expected)") } }
                }
            }
        }
        group.wait()
        #expect(answered.withLock { $0 } == 512 * 4)
        let wrong = mismatches.withLock { $0 }
        #expect(wrong.isEmpty, "\(wrong.count) wrong answers, first: \(wrong.prefix(5))")
        // The answers shared round trips: more statements than writes, on the Postgres and the Redis pool.
        let exposition = try worker.request("GET", "/metrics").body
        func samples(_ name: String) -> [String: Double] {
            var values: [String: Double] = [:]
            for line in exposition.split(separator: "\n") where line.hasPrefix(name + "{") {
                let parts = line.split(separator: " ")
                values[String(parts[0].dropFirst(name.count))] = Double(parts.last ?? "") ?? 0
            }
            return values
        }
        let roundTrips = samples("pool_round_trips_total")
        let statements = samples("pool_statements_total")
        #expect(roundTrips.count == 2, "\(roundTrips)")
        for (pool, trips) in roundTrips {
            #expect(trips > 0 && (statements[pool] ?? 0) > trips, "\(pool): \(statements[pool] ?? 0) in \(trips) round trips")
        }
        worker.process.signal(SIGTERM)
        #expect(try worker.process.waitForExit() == 0)
    }
}
