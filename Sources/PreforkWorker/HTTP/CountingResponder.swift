import Synchronization
import WorkerRuntime

/// Counts every answer, for `MAX_REQUESTS` (asks the supervisor for a replacement at the limit) and for the
/// `worker_requests_total` the supervisor's admin endpoint collects. In the runtime, so every application gets
/// both without counting itself (a worker of its own once ignored `--max-requests`).
final class CountingResponder<Inner: Responder>: Responder {
    let inner: Inner
    let limit: RequestLimit?
    private let answered = Atomic<Int>(0)

    init(_ inner: Inner, limit: RequestLimit?) {
        self.inner = inner
        self.limit = limit
    }

    var count: Int { answered.load(ordering: .relaxed) }

    func immediateResponse(to request: Request) -> Response? {
        guard let response = inner.immediateResponse(to: request) else { return nil }
        counted()
        return response
    }

    func response(to request: Request) async -> Response {
        let response = await inner.response(to: request)
        counted()
        return response
    }

    private func counted() {
        answered.add(1, ordering: .relaxed)
        limit?.served()
    }
}
