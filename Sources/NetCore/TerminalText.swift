/// Text from outside (process names a tenant set with prctl, pod names, file names,
/// copied tables) made safe to print on a terminal: on one line, and unable to move
/// the cursor, recolour, retitle the window or reorder what follows it.
extension StringProtocol {
    /// Every control character escaped: C0 (newline, carriage return and escape
    /// included), DEL, C1, and the bidirectional overrides that reorder a line on screen
    /// ("Trojan source"). Printable text, tabs aside, is unchanged.
    public var terminalSafe: String {
        guard unicodeScalars.contains(where: TerminalText.needsEscape) else { return String(self) }
        var out = ""
        for scalar in unicodeScalars {
            guard TerminalText.needsEscape(scalar) else {
                out.unicodeScalars.append(scalar)
                continue
            }
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                let hex = String(scalar.value, radix: 16)
                out += scalar.value < 0x100 ? "\\x" + (hex.count < 2 ? "0" + hex : hex) : "\\u{\(hex)}"
            }
        }
        return out
    }
}

enum TerminalText {
    static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F: true
        case 0x061C, 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069: true
        default: false
        }
    }
}
