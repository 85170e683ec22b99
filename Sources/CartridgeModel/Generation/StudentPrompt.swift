/// The tokens a model reads after cartridges: one user turn and the assistant's opening, with no
/// BOS and no system prompt (the cartridges stand in for it). Self-study trains the student on
/// exactly these tokens and the runtime asks its questions with them, so a cartridge is served
/// the way it was trained.
public enum StudentPrompt {
    /// `<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n` around the question's
    /// exact ids (self-study keeps the ids the model generated; it never re-tokenizes text).
    public static func ids(question: [Int], tokenizer: Tokenizer) -> [Int] {
        tokenizer.encode("<|im_start|>user\n", parseSpecial: true) + question
            + tokenizer.encode("<|im_end|>\n<|im_start|>assistant\n", parseSpecial: true)
    }

    /// The same for a question given as text, tokenized as plain text (special-token names in it
    /// stay text).
    public static func ids(question: String, tokenizer: Tokenizer) -> [Int] {
        ids(question: tokenizer.encode(question, parseSpecial: false), tokenizer: tokenizer)
    }

    /// `<|im_start|>system\n{ids}<|im_end|>\n`: a text read in context as a system turn, as the
    /// evaluation's in-context condition, self-study's agents and its teacher read it.
    public static func systemTurn(_ ids: ArraySlice<Int>, tokenizer: Tokenizer) -> [Int] {
        tokenizer.encode("<|im_start|>system\n", parseSpecial: true) + ids + tokenizer.encode("<|im_end|>\n", parseSpecial: true)
    }
}
