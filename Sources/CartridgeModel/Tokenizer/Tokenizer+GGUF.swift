extension Tokenizer {
    /// Builds the tokenizer stored in a GGUF file (`tokenizer.ggml.*` keys, model "gpt2").
    public convenience init(gguf: GGUFFile) throws {
        let model = try gguf.string("tokenizer.ggml.model")
        guard model == "gpt2" else {
            throw GGUFError.wrongKeyType(key: "tokenizer.ggml.model", expected: "\"gpt2\" (byte-level BPE)", found: "\"\(model)\"")
        }
        if let pre = try gguf.optionalString("tokenizer.ggml.pre"), pre != "smollm" {
            throw GGUFError.wrongKeyType(key: "tokenizer.ggml.pre", expected: "\"smollm\"", found: "\"\(pre)\"")
        }
        let tokens = try gguf.strings("tokenizer.ggml.tokens")
        let merges = try gguf.strings("tokenizer.ggml.merges")
        let types = try gguf.ints("tokenizer.ggml.token_type").map { Int32(truncatingIfNeeded: $0) }
        try self.init(tokens: tokens, merges: merges, tokenTypes: types,
                      bosID: try gguf.optionalInt("tokenizer.ggml.bos_token_id"),
                      eosID: try gguf.optionalInt("tokenizer.ggml.eos_token_id"))
    }
}
