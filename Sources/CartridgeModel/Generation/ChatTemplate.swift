/// A message of a chat conversation.
public struct ChatMessage: Sendable, Equatable, Codable {
    public enum Role: String, Sendable, Codable { case system, user, assistant }
    public var role: Role
    public var content: String
    public init(_ role: Role, _ content: String) {
        self.role = role
        self.content = content
    }
}

/// ChatML rendering with the semantics of SmolLM2's template:
/// `<|im_start|>{role}\n{content}<|im_end|>\n` per message; when the first message is not a
/// system message the model's default system prompt is inserted first (unless disabled), and
/// a generation prompt appends `<|im_start|>assistant\n`.
public struct ChatTemplate: Sendable {
    public static let smolLM2DefaultSystemPrompt = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
    public var defaultSystemPrompt: String?

    public init(defaultSystemPrompt: String? = ChatTemplate.smolLM2DefaultSystemPrompt) {
        self.defaultSystemPrompt = defaultSystemPrompt
    }

    /// Renders messages to text; tokenize the result with `parseSpecial: true`.
    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool = true, includeDefaultSystem: Bool = true) -> String {
        var out = ""
        if includeDefaultSystem, let sys = defaultSystemPrompt, messages.first?.role != .system {
            out += Self.turn(.system, sys)
        }
        for m in messages { out += Self.turn(m.role, m.content) }
        if addGenerationPrompt { out += "<|im_start|>assistant\n" }
        return out
    }

    /// One complete turn: `<|im_start|>role\ncontent<|im_end|>\n`.
    public static func turn(_ role: ChatMessage.Role, _ content: String) -> String {
        "<|im_start|>\(role.rawValue)\n\(content)<|im_end|>\n"
    }
}
