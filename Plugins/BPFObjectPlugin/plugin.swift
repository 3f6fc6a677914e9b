import Foundation
import PackagePlugin

/// Compiles every `bpf/*.bpf.c` with clang (`-target bpf`) and embeds the
/// objects into the BPFObjects module as base64 text, so the `xdplb` binary
/// carries its data plane and no loose `.o` file can go missing.
@main
struct BPFObjectPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let root = context.package.directoryURL
        let bpfDir = root.appending(path: "bpf")
        let script = bpfDir.appending(path: "build-objects.sh")
        let files = try FileManager.default.contentsOfDirectory(atPath: bpfDir.path(percentEncoded: false))
            .filter { $0.hasSuffix(".c") || $0.hasSuffix(".h") || $0.hasSuffix(".sh") }
            .sorted()
            .map { bpfDir.appending(path: $0) }
        let outDir = context.pluginWorkDirectoryURL
        let output = outDir.appending(path: "BPFObjectData.swift")
        return [
            .buildCommand(
                displayName: "Compiling BPF objects in bpf/",
                executable: URL(fileURLWithPath: "/bin/sh"),
                arguments: [script.path(percentEncoded: false), outDir.path(percentEncoded: false), output.path(percentEncoded: false)],
                inputFiles: files,
                outputFiles: [output]
            )
        ]
    }
}
