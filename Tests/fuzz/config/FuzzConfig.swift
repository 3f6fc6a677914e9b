// libFuzzer target: the config loader (node files and shared configs) on arbitrary bytes.
// Built only with XDPLB_FUZZ=1 (see Tests/fuzz/run.sh). Invariants checked on every input:
// no crash or hang (libFuzzer's own timeout), and every error line is bounded (finding 3:
// an echoed value is clipped, whatever the input).
import CFuzzMain
import Config

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfig(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    check { () throws(ConfigError) in _ = try ConfigLoader.parse(text, file: "fuzz.yaml") }
    check { () throws(ConfigError) in _ = try ConfigLoader.parseShared(text, file: "fuzz.yaml") }
    return 0
}

func check(_ body: () throws(ConfigError) -> Void) {
    do throws(ConfigError) { try body() } catch {
        let d = error.description
        precondition(!d.isEmpty, "an empty error")
        for line in d.split(separator: "\n") {
            precondition(line.utf8.count <= 2048, "an error line of \(line.utf8.count) bytes: \(line.prefix(200))")
        }
    }
}
