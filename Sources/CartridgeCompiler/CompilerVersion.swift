/// The compiler's version. It is part of every cartridge's build key, so `make cartridges`
/// compiles a cartridge again when it changes and not when the binary is merely relinked.
/// Raise it with every change that alters what a compile produces from the same documents and
/// settings (self-study, training, defaults, the output's contents).
public enum CompilerVersion {
    public static let current = "1.3.0"
}
