/// How user-supplied values are shown in messages: clipped, with control characters
/// escaped, so a hostile value can neither flood a log nor forge a line of it.
public enum Echo {
    /// Longest echoed value, in characters, before it is clipped with `…`.
    public static let maxChars = 64

    /// `s` cut to `limit` characters plus `…` when longer.
    public static func clip(_ s: String, _ limit: Int = maxChars) -> String {
        var out = ""
        var n = 0
        for ch in s {
            if n == limit { return out + "…" }
            out.append(ch)
            n += 1
        }
        return out
    }

    /// `s` with control characters written as escapes (`\n`, `\r`, `\t`, `\u{1b}`).
    public static func escaped(_ s: String) -> String {
        guard s.unicodeScalars.contains(where: isControl) else { return s }
        var out = ""
        for u in s.unicodeScalars {
            switch u {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where isControl(u): out += "\\u{\(String(u.value, radix: 16))}"
            default: out.unicodeScalars.append(u)
            }
        }
        return out
    }

    /// `'s'`, escaped and clipped: the form every message quotes a value in.
    public static func quoted(_ s: String) -> String { "'\(clip(escaped(String(s.prefix(maxChars + 1)))))'" }

    /// True if `s` has a C0/C1 control character, DEL, or a space.
    public static func hasControlOrSpace(_ s: String) -> Bool {
        s.unicodeScalars.contains { isControl($0) || $0 == " " }
    }

    static func isControl(_ u: Unicode.Scalar) -> Bool { u.value < 0x20 || (0x7f...0x9f).contains(u.value) }
}
