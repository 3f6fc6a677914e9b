/// A cheap upper bound on how deeply YAML text nests collections, found in one pass
/// without parsing it. Yams composes its tree recursively, so text nested thousands
/// deep would overflow the stack; the loader refuses such text before Yams sees it.
///
/// The bound only over-counts: each block line counts its indentation level's depth
/// plus its `- `/`? ` indicators plus one (a `key:` mapping), and each open flow
/// bracket (`[`, `{`) counts two (the collection and an implicit single-pair mapping).
/// Quoted scalars, comments and block scalars (`|`, `>`) are skipped.
enum YAMLDepth {
    /// The 1-based line where the bound first exceeds `limit`, or nil if it never does.
    static func firstLineDeeper(than limit: Int, in text: String) -> Int? {
        var stack: [(indent: Int, depth: Int)] = []
        var flow = 0
        var quote: UInt8 = 0            // 0, or the open quote character
        var blockScalarIndent: Int?     // inside a `|`/`>` scalar opened at this indent
        var lineDepth = 0
        var lineNo = 0
        for line in text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNo += 1
            let bytes = Array(line)
            var i = 0
            let indent = bytes.prefix { $0 == UInt8(ascii: " ") }.count
            let blank = indent == bytes.count || bytes[indent] == UInt8(ascii: "#") || bytes[indent] == UInt8(ascii: "\r")
            if let bi = blockScalarIndent {
                if blank || indent > bi { continue }
                blockScalarIndent = nil
            }
            if quote == 0 && flow == 0 {
                if blank { continue }
                while let top = stack.last, top.indent >= indent { stack.removeLast() }
                var depth = (stack.last?.depth ?? 0) + 1
                i = indent
                // Compact block indicators: "- - - x", "? - x".
                while i < bytes.count, bytes[i] == UInt8(ascii: "-") || bytes[i] == UInt8(ascii: "?"),
                      i + 1 == bytes.count || bytes[i + 1] == UInt8(ascii: " ") || bytes[i + 1] == UInt8(ascii: "\t")
                        || bytes[i + 1] == UInt8(ascii: "\r") {
                    depth += 1
                    i += 1
                    while i < bytes.count, bytes[i] == UInt8(ascii: " ") || bytes[i] == UInt8(ascii: "\t") { i += 1 }
                }
                stack.append((indent, depth))
                lineDepth = depth
                if lineDepth > limit { return lineNo }
            }
            var prev: UInt8 = i == 0 ? UInt8(ascii: " ") : bytes[i - 1]
            var lastSignificant: UInt8 = 0
            while i < bytes.count {
                let c = bytes[i]
                if quote == UInt8(ascii: "'") {
                    if c == UInt8(ascii: "'") {
                        if i + 1 < bytes.count, bytes[i + 1] == UInt8(ascii: "'") { i += 2; continue }
                        quote = 0
                    }
                } else if quote == UInt8(ascii: "\"") {
                    if c == UInt8(ascii: "\\") { i += 2; continue }
                    if c == UInt8(ascii: "\"") { quote = 0 }
                } else {
                    let tokenStart = prev == UInt8(ascii: " ") || prev == UInt8(ascii: "\t") || prev == UInt8(ascii: "[")
                        || prev == UInt8(ascii: "{") || prev == UInt8(ascii: ",") || prev == UInt8(ascii: ":")
                        || prev == UInt8(ascii: "-") || prev == UInt8(ascii: "?")
                    switch c {
                    case UInt8(ascii: "#") where prev == UInt8(ascii: " ") || prev == UInt8(ascii: "\t"):
                        i = bytes.count
                        continue
                    case UInt8(ascii: "'") where tokenStart, UInt8(ascii: "\"") where tokenStart:
                        quote = c
                    case UInt8(ascii: "["), UInt8(ascii: "{"):
                        flow += 1
                        if lineDepth + 2 * flow > limit { return lineNo }
                    case UInt8(ascii: "]"), UInt8(ascii: "}"):
                        flow = max(0, flow - 1)
                    default:
                        break
                    }
                    if c != UInt8(ascii: " ") && c != UInt8(ascii: "\r") { lastSignificant = c }
                }
                prev = c
                i += 1
            }
            if quote == 0 && flow == 0 && (lastSignificant == UInt8(ascii: "|") || lastSignificant == UInt8(ascii: ">")
                || isBlockScalarHeader(bytes)) {
                blockScalarIndent = indent
            }
        }
        return nil
    }

    /// A line ending in a block scalar header with indicators, e.g. `key: |-` or `- >+2`.
    private static func isBlockScalarHeader(_ bytes: [UInt8]) -> Bool {
        var end = bytes.count
        while end > 0, bytes[end - 1] == UInt8(ascii: " ") || bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
        var j = end
        while j > 0, bytes[j - 1] == UInt8(ascii: "-") || bytes[j - 1] == UInt8(ascii: "+") || (bytes[j - 1] >= 0x30 && bytes[j - 1] <= 0x39) {
            j -= 1
        }
        guard j > 0, j < end, bytes[j - 1] == UInt8(ascii: "|") || bytes[j - 1] == UInt8(ascii: ">") else { return false }
        return j == 1 || bytes[j - 2] == UInt8(ascii: " ")
    }
}
