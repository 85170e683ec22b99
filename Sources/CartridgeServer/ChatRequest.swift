import CartridgeFormat
import CartridgeModel
import Foundation

/// Which cartridges a chat request asks for besides `model`.
enum CartridgeSelection: Equatable {
    case none
    /// References composed in order.
    case list([String])
    /// Retrieval picks the best `top` by the last user message.
    case auto(top: Int)
}

/// A `POST /v1/chat/completions` body, checked field by field: a field of the wrong type or out
/// of range is a 400 naming it. Fields this server does not know are ignored, as OpenAI's own
/// clients send some by default; fields it knows but cannot honour (`n` > 1, tools) are refused.
struct ChatRequest {
    var model: String
    var messages: [ChatMessage]
    var maxTokens: Int?
    var temperature: Float = 1
    var topP: Float = 1
    var seed: UInt64?
    var stop: [String] = []
    var stream = false
    var includeUsage = false
    var user: String?
    var cartridges: CartridgeSelection = .none

    static func parse(_ bytes: [UInt8]) throws -> ChatRequest {
        let value: JSONValue
        do {
            value = try JSONDecoder().decode(JSONValue.self, from: Data(bytes))
        } catch {
            throw APIError.invalid("the body is not valid JSON", code: "invalid_json")
        }
        guard case let .object(o) = value else { throw APIError.invalid("the body must be a JSON object", code: "invalid_json") }
        let f = Fields(o)

        guard let model = try f.string("model") else { throw APIError.invalid("'model' is required", param: "model", code: "missing_required_parameter") }
        var r = ChatRequest(model: model, messages: try messages(o["messages"]))
        if let n = try f.int("n"), n != 1 { throw APIError.invalid("only n = 1 is supported", param: "n") }
        for unsupported in ["tools", "functions", "tool_choice", "function_call"] where o[unsupported] != nil && o[unsupported] != .null {
            throw APIError.invalid("'\(unsupported)' is not supported by this server", param: unsupported, code: "unsupported_parameter")
        }
        if case .bool(true)? = o["logprobs"] { throw APIError.invalid("logprobs are not supported", param: "logprobs", code: "unsupported_parameter") }
        r.maxTokens = try f.int("max_completion_tokens") ?? f.int("max_tokens")
        if let m = r.maxTokens, m < 1 {
            throw APIError.invalid("max_tokens must be at least 1 (got \(m))", param: o["max_completion_tokens"] != nil ? "max_completion_tokens" : "max_tokens")
        }
        if let t = try f.number("temperature") {
            guard (0...2).contains(t) else { throw APIError.invalid("temperature must be between 0 and 2 (got \(t))", param: "temperature") }
            r.temperature = Float(t)
        }
        if let p = try f.number("top_p") {
            guard p > 0 && p <= 1 else { throw APIError.invalid("top_p must be in (0, 1] (got \(p))", param: "top_p") }
            r.topP = Float(p)
        }
        if let s = try f.int("seed") { r.seed = UInt64(bitPattern: Int64(s)) }
        r.stop = try stops(o["stop"])
        r.stream = try f.bool("stream") ?? false
        if let so = o["stream_options"], so != .null {
            guard case let .object(options) = so else { throw APIError.invalid("stream_options must be an object", param: "stream_options") }
            r.includeUsage = try Fields(options, prefix: "stream_options.").bool("include_usage") ?? false
        }
        r.user = try f.string("user")
        let top = try f.int("cartridges_top") ?? 1
        guard (1...16).contains(top) else { throw APIError.invalid("cartridges_top must be between 1 and 16 (got \(top))", param: "cartridges_top") }
        switch o["cartridges"] {
        case nil, .null?: break
        case .string("auto")?: r.cartridges = .auto(top: top)
        case let .array(items)?:
            let refs = try items.map { item -> String in
                guard case let .string(s) = item else { throw APIError.invalid("cartridges must be \"auto\" or a list of cartridge references", param: "cartridges") }
                return s
            }
            guard refs.count <= 16 else { throw APIError.invalid("at most 16 cartridges can be composed (got \(refs.count))", param: "cartridges") }
            r.cartridges = refs.isEmpty ? .none : .list(refs)
        default: throw APIError.invalid("cartridges must be \"auto\" or a list of cartridge references", param: "cartridges")
        }
        return r
    }

    private static func messages(_ value: JSONValue?) throws -> [ChatMessage] {
        guard let value else { throw APIError.invalid("'messages' is required", param: "messages", code: "missing_required_parameter") }
        guard case let .array(items) = value, !items.isEmpty else {
            throw APIError.invalid("messages must be a non-empty array", param: "messages")
        }
        return try items.enumerated().map { i, item in
            let param = "messages[\(i)]"
            guard case let .object(m) = item else { throw APIError.invalid("\(param) must be an object", param: param) }
            let f = Fields(m, prefix: "\(param).")
            guard let roleText = try f.string("role") else { throw APIError.invalid("\(param).role is required", param: "\(param).role") }
            let role: ChatMessage.Role
            switch roleText {
            case "system", "developer": role = .system
            case "user": role = .user
            case "assistant": role = .assistant
            default: throw APIError.invalid("\(param).role '\(roleText)' is not supported: use system, developer, user or assistant", param: "\(param).role")
            }
            return ChatMessage(role, try content(m["content"], param: "\(param).content", optional: role == .assistant))
        }
    }

    /// A string, or an array of `{"type": "text", "text": ...}` parts joined.
    private static func content(_ value: JSONValue?, param: String, optional: Bool) throws -> String {
        switch value {
        case let .string(s)?: return s
        case nil, .null?:
            if optional { return "" }
            throw APIError.invalid("\(param) is required", param: param)
        case let .array(parts)?:
            return try parts.enumerated().map { j, part in
                guard case let .object(p) = part, p["type"] == .string("text"), case let .string(text)? = p["text"] else {
                    throw APIError.invalid("\(param)[\(j)] must be a text part {\"type\": \"text\", \"text\": ...}", param: "\(param)[\(j)]")
                }
                return text
            }.joined()
        default: throw APIError.invalid("\(param) must be a string or an array of text parts", param: param)
        }
    }

    private static func stops(_ value: JSONValue?) throws -> [String] {
        switch value {
        case nil, .null?: return []
        case let .string(s)?:
            guard !s.isEmpty else { throw APIError.invalid("stop must not be empty", param: "stop") }
            return [s]
        case let .array(items)?:
            guard items.count <= 4 else { throw APIError.invalid("stop takes at most 4 sequences (got \(items.count))", param: "stop") }
            return try items.map { item in
                guard case let .string(s) = item, !s.isEmpty else { throw APIError.invalid("stop must hold non-empty strings", param: "stop") }
                return s
            }
        default: throw APIError.invalid("stop must be a string or an array of strings", param: "stop")
        }
    }
}

/// Typed reads of an object's fields; a present field of another type is a 400 naming it
/// (`null` counts as absent).
struct Fields {
    let object: [String: JSONValue]
    let prefix: String

    init(_ object: [String: JSONValue], prefix: String = "") {
        self.object = object
        self.prefix = prefix
    }

    private func wrongType(_ key: String, _ expected: String) -> APIError {
        APIError.invalid("\(prefix)\(key) must be \(expected)", param: prefix + key, code: "invalid_type")
    }

    func string(_ key: String) throws -> String? {
        switch object[key] {
        case nil, .null?: return nil
        case let .string(s)?: return s
        default: throw wrongType(key, "a string")
        }
    }

    func bool(_ key: String) throws -> Bool? {
        switch object[key] {
        case nil, .null?: return nil
        case let .bool(b)?: return b
        default: throw wrongType(key, "true or false")
        }
    }

    func number(_ key: String) throws -> Double? {
        switch object[key] {
        case nil, .null?: return nil
        case let .number(d)?: return d
        default: throw wrongType(key, "a number")
        }
    }

    /// An integer (a number with no fraction, within ±2^53).
    func int(_ key: String) throws -> Int? {
        guard let d = try number(key) else { return nil }
        guard d == d.rounded(), abs(d) <= 9_007_199_254_740_992 else { throw wrongType(key, "an integer") }
        return Int(d)
    }
}
