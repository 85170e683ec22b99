import Foundation
import Hummingbird

/// An error as OpenAI's API reports it: a status and `{"error": {"message","type","param","code"}}`.
public struct APIError: Error, HTTPResponseError, CustomStringConvertible {
    public let status: HTTPResponse.Status
    public let message: String
    public let type: String
    public let param: String?
    public let code: String?

    public init(status: HTTPResponse.Status, message: String, type: String, param: String? = nil, code: String? = nil) {
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
    }

    public var description: String { "\(status.code) \(message)" }

    /// 400: the request is malformed or a value is out of range.
    static func invalid(_ message: String, param: String? = nil, code: String? = "invalid_value") -> APIError {
        APIError(status: .badRequest, message: message, type: "invalid_request_error", param: param, code: code)
    }

    /// 404: no such model, cartridge, version or alias.
    static func notFound(_ message: String, param: String? = nil, code: String = "not_found") -> APIError {
        APIError(status: .notFound, message: message, type: "invalid_request_error", param: param, code: code)
    }

    /// 409: the request conflicts with what the registry holds.
    static func conflict(_ message: String, code: String) -> APIError {
        APIError(status: .conflict, message: message, type: "invalid_request_error", code: code)
    }

    static let unauthorized = APIError(status: .unauthorized, message: "missing or wrong bearer token (send Authorization: Bearer TOKEN)",
                                       type: "authentication_error", code: "invalid_api_key")
    static let forbidden = APIError(status: .forbidden, message: "this route needs the admin token",
                                    type: "permission_error", code: "admin_token_required")

    /// 413; `limit` nil when the server did not say which limit.
    static func tooLarge(limit: Int?) -> APIError {
        APIError(status: .contentTooLarge, message: "the request body is larger than the limit" + (limit.map { " of \($0) bytes" } ?? ""),
                 type: "invalid_request_error", code: "request_too_large")
    }

    static func internalError(_ message: String) -> APIError {
        APIError(status: .internalServerError, message: message, type: "server_error", code: "internal_error")
    }

    /// The JSON object `{"error": {...}}`.
    var body: [String: Any] {
        ["error": ["message": message, "type": type, "param": param as Any? ?? NSNull(), "code": code as Any? ?? NSNull()]]
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: JSONBody.encode(body))))
    }
}

/// JSON bodies written with `JSONSerialization` (sorted keys, so bodies are stable).
enum JSONBody {
    static func encode(_ object: Any) -> [UInt8] {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        return [UInt8](data)
    }

    static func response(_ object: Any, status: HTTPResponse.Status = .ok, headers extra: HTTPFields = [:]) -> Response {
        var headers = extra
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: encode(object))))
    }
}
