import Crypto
import Hummingbird

/// Turns every error into OpenAI's error body with its status (unknown routes, bodies too
/// large and anything unexpected included) and counts every answer in the metrics.
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: ServerMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let route = context.endpointPath ?? "unmatched"
        do {
            let response = try await next(request, context)
            metrics.request(route: context.endpointPath ?? route, status: Int(response.status.code))
            return response
        } catch {
            let api = Self.apiError(error, request: request)
            metrics.request(route: context.endpointPath ?? route, status: Int(api.status.code))
            return try api.response(from: request, context: context)
        }
    }

    static func apiError(_ error: Error, request: Request) -> APIError {
        switch error {
        case let e as APIError: return e
        case let e as HTTPError:
            switch e.status {
            case .notFound: return .notFound("no route \(request.method) \(request.uri.path)", code: "unknown_route")
            case .contentTooLarge: return .tooLarge(limit: nil)
            case .methodNotAllowed:
                return APIError(status: .methodNotAllowed, message: "\(request.method) is not allowed on \(request.uri.path)",
                                type: "invalid_request_error", code: "method_not_allowed")
            default:
                let message = e.body ?? e.status.reasonPhrase
                return e.status.code < 500 ? .invalid(message, code: nil) : .internalError(message)
            }
        default: return CartridgeServer.apiError(error)
        }
    }
}

/// Bearer tokens: every route but `/health` needs `token` when one is set; the admin routes
/// (`/v1/cartridges...`) need `adminToken` when one is set. Tokens are compared in constant time.
struct AuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: String?
    let adminToken: String?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        guard path != "/health" else { return try await next(request, context) }
        let given = Self.bearer(request)
        let isAdmin = path == "/v1/cartridges" || path.hasPrefix("/v1/cartridges/")
        if isAdmin, let admin = adminToken {
            guard let given else { throw token == nil ? APIError.forbidden : APIError.unauthorized }
            if Self.same(given, admin) { return try await next(request, context) }
            if let t = token, Self.same(given, t) { throw APIError.forbidden }
            throw token == nil ? APIError.forbidden : APIError.unauthorized
        }
        if let t = token {
            guard let given, Self.same(given, t) || adminToken.map({ Self.same(given, $0) }) == true else { throw APIError.unauthorized }
        }
        return try await next(request, context)
    }

    static func bearer(_ request: Request) -> String? {
        guard let value = request.headers[.authorization] else { return nil }
        let parts = value.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        return String(parts[1])
    }

    /// Equality in time independent of where the strings differ: their SHA-256s are compared in full.
    static func same(_ a: String, _ b: String) -> Bool {
        let x = Array(SHA256.hash(data: Array(a.utf8))), y = Array(SHA256.hash(data: Array(b.utf8)))
        var diff: UInt8 = 0
        for i in 0..<x.count { diff |= x[i] ^ y[i] }
        return diff == 0
    }
}
