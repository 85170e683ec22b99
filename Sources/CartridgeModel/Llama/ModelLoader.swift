import CartridgeKernels
import Foundation
import Logging

/// Where the default model lives and how to find it.
public enum ModelLocation {
    public static let defaultFileName = "SmolLM2-135M-Instruct.Q4_1.gguf"

    /// The folder of installed files (`CartridgesHome`).
    public static var home: URL { CartridgesHome.directory }

    public static var defaultModelPath: String { home.appendingPathComponent(defaultFileName).path }
}

/// Errors from loading a model.
public enum ModelLoadError: Error, CustomStringConvertible {
    case modelNotFound(path: String)
    case gguf(GGUFError)

    public var description: String {
        switch self {
        case let .modelNotFound(path):
            return "no model at \(path)"
        case let .gguf(e): return e.description
        }
    }
}

extension LlamaModel {
    /// Loads a llama-architecture model from a parsed GGUF file, dequantizing every weight to f32
    /// and keeping Q8_0/Q4_1 blocks for fast decoding.
    public static func load(gguf: GGUFFile, logger: Logger = Logger(label: "cartridges.model")) throws -> LlamaModel {
        let c = try ModelConfig(gguf: gguf)
        let start = ContinuousClock.now

        func tensor(_ name: String, _ shape: [Int]) throws -> (FloatBuffer, GGUFTensorInfo) {
            guard let info = gguf.tensors[name] else { throw GGUFError.missingTensor(name) }
            guard info.shape == shape else { throw GGUFError.unexpectedTensorShape(tensor: name, expected: shape, found: info.shape) }
            guard info.type.isSupported else { throw GGUFError.unsupportedTensorType(tensor: name, type: info.type.name) }
            let buf = FloatBuffer(count: info.elementCount)
            try Dequantize.run(info.type, from: try gguf.data(name).baseAddress!, count: info.elementCount, into: buf.pointer)
            return (buf, info)
        }
        func vector(_ name: String, _ n: Int) throws -> FloatBuffer { try tensor(name, [n]).0 }
        func linear(_ name: String, out: Int, in inF: Int) throws -> Linear {
            let (w, info) = try tensor(name, [inF, out])
            let q = QuantizedMatrix(type: info.type, data: try gguf.data(name), rows: out, cols: inF)
            return Linear(name: name, weight: w, outFeatures: out, inFeatures: inF, quantized: q)
        }

        let qDim = c.heads * c.headDim, kvDim = c.kvHeads * c.headDim
        var layers: [LlamaLayer] = []
        for l in 0..<c.layers {
            let p = "blk.\(l)."
            layers.append(LlamaLayer(
                attnNorm: try vector(p + "attn_norm.weight", c.dim),
                wq: try linear(p + "attn_q.weight", out: qDim, in: c.dim),
                wk: try linear(p + "attn_k.weight", out: kvDim, in: c.dim),
                wv: try linear(p + "attn_v.weight", out: kvDim, in: c.dim),
                wo: try linear(p + "attn_output.weight", out: c.dim, in: qDim),
                ffnNorm: try vector(p + "ffn_norm.weight", c.dim),
                wGate: try linear(p + "ffn_gate.weight", out: c.ffnDim, in: c.dim),
                wUp: try linear(p + "ffn_up.weight", out: c.ffnDim, in: c.dim),
                wDown: try linear(p + "ffn_down.weight", out: c.dim, in: c.ffnDim)))
        }
        let embedding = try linear("token_embd.weight", out: c.vocabSize, in: c.dim)
        let output = c.tiedOutput ? embedding : try linear("output.weight", out: c.vocabSize, in: c.dim)
        let model = LlamaModel(config: c, layers: layers, tokenEmbedding: embedding.weight,
                               outputNorm: try vector("output_norm.weight", c.dim), output: output)
        logger.debug("loaded \(c.name): \(c.layers) layers, dim \(c.dim), in \(ContinuousClock.now - start)")
        return model
    }
}
