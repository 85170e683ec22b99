/// The five kinds of seed prompt that start a self-study conversation. Each asks the model,
/// which has just read an excerpt, to write one user message about it; the wording pushes a small
/// model towards concrete requests grounded in a specific part of the excerpt.
public enum SeedKind: String, Codable, Sendable, CaseIterable {
    case structuring, summarization, question, useCase, creative

    /// The instruction given to the question-writing agent.
    public var prompt: String {
        switch self {
        case .structuring:
            return "Choose one specific part of the text above, such as a list of facts, a sequence of events or a set of names, and write a request asking me to reorganize it as a table, a bulleted list or JSON. Name that part precisely. Reply with the request only."
        case .summarization:
            return "Write a request asking me to summarize one specific part of the text above. Name the part by the person, event, object or idea it is about. Reply with the request only."
        case .question:
            return "Write one factual question whose answer is stated in a single sentence of the text above. Use the exact name, number, date or term that the sentence mentions, so the question has one clear answer. Reply with the question only."
        case .useCase:
            return "Imagine someone who needs a detail from the text above for a real task. Write the question they would ask, mentioning the specific detail they need. Reply with the question only."
        case .creative:
            return "Write a question that asks me to explain, compare or apply one specific idea from the text above in a new way. Refer to that idea by name. Reply with the question only."
        }
    }
}
