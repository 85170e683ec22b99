// The ops: each op's forward and backward side by side, one op per file (RMSNorm, RoPE,
// softmax, SwiGLU, prefix attention, the losses; the linear layers' pair is `Linear` in
// CartridgeModel).
//
// One backward convention (docs/training.md): every backward ACCUMULATES into its input
// gradients (`dx += ...`, as llm.c does), so a caller zeroes a gradient buffer once and each
// consumer of an input adds its share. The in-place ops (RoPE, softmax, the losses) have no
// separate input gradient: they turn the output gradient into the input gradient in the same
// buffer. BackwardConventionTests checks every op against this.
