/// /proc/PID/environ: NUL-separated NAME=value pairs, as the process was started with.
public enum Environ {
    /// The value of `name`, the first if it is set twice; nil when it is not set.
    public static func value(of name: String, in bytes: [UInt8]) -> String? {
        let prefix = Array("\(name)=".utf8)
        for entry in bytes.split(separator: 0) where entry.starts(with: prefix) {
            return String(decoding: entry.dropFirst(prefix.count), as: UTF8.self)
        }
        return nil
    }
}
