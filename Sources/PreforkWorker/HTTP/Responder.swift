/// What the HTTP layer asks of the application: an answer for each request.
public protocol Responder: Sendable {
    /// The answer when it needs no I/O (health, metrics, 404, 405), computed on the event loop; nil otherwise.
    func immediateResponse(to request: Request) -> Response?
    /// The answer for everything else, off the event loop's stack.
    func response(to request: Request) async -> Response
}

extension Responder {
    /// Everything goes through `response(to:)` unless a responder answers some requests without I/O.
    public func immediateResponse(to request: Request) -> Response? { nil }
}
