import CZlib

/// gzip through zlib (RFC 1952 framing via windowBits 15 + 16).
enum Gzip {
    static func compress(_ bytes: [UInt8]) throws -> [UInt8] {
        var stream = z_stream()
        guard ctd_deflate_init_gzip(&stream, Z_DEFAULT_COMPRESSION) == Z_OK else { throw GzipError("cannot start compressing") }
        defer { deflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, uLong(bytes.count))) + 32)
        var input = bytes
        let status = input.withUnsafeMutableBufferPointer { source in
            output.withUnsafeMutableBufferPointer { target in
                stream.next_in = source.baseAddress
                stream.avail_in = uInt(source.count)
                stream.next_out = target.baseAddress
                stream.avail_out = uInt(target.count)
                return deflate(&stream, Z_FINISH)
            }
        }
        guard status == Z_STREAM_END else { throw GzipError("compression did not finish (zlib status \(status))", zlibStatus: status) }
        output.removeSubrange(Int(stream.total_out)...)
        return output
    }

    /// - Parameter limit: refuse output larger than this (a gzip bomb, or the wrong file).
    static func decompress(_ bytes: [UInt8], limit: Int) throws -> [UInt8] {
        var stream = z_stream()
        guard ctd_inflate_init_gzip(&stream) == Z_OK else { throw GzipError("cannot start decompressing") }
        defer { inflateEnd(&stream) }
        var input = bytes
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        var status = Z_OK
        // next_in must stay valid: keep the buffer pinned for the whole inflate.
        try input.withUnsafeMutableBufferPointer { source in
            stream.next_in = source.baseAddress
            stream.avail_in = uInt(source.count)
            repeat {
                let produced = chunk.withUnsafeMutableBufferPointer { target in
                    stream.next_out = target.baseAddress
                    stream.avail_out = uInt(target.count)
                    status = inflate(&stream, Z_NO_FLUSH)
                    return target.count - Int(stream.avail_out)
                }
                guard status == Z_OK || status == Z_STREAM_END else {
                    throw GzipError(status == Z_BUF_ERROR ? "the gzip data is truncated" : "not valid gzip data (zlib status \(status))", zlibStatus: status)
                }
                output += chunk[0..<produced]
                guard output.count <= limit else { throw GzipError("decompresses to more than \(limit) bytes", isTooLarge: true) }
                if produced == 0 && stream.avail_in == 0 && status != Z_STREAM_END {
                    throw GzipError("the gzip data is truncated")
                }
            } while status != Z_STREAM_END
        }
        return output
    }
}

/// Why gzip data could not be read or written.
public struct GzipError: Error, Sendable, CustomStringConvertible {
    public var description: String
    /// The output would exceed the caller's limit (a gzip bomb, or the wrong file).
    public var isTooLarge: Bool
    /// zlib's status code where zlib refused the data (Z_DATA_ERROR, Z_BUF_ERROR...).
    public var zlibStatus: Int32?
    init(_ description: String, isTooLarge: Bool = false, zlibStatus: Int32? = nil) {
        self.description = description
        self.isTooLarge = isTooLarge
        self.zlibStatus = zlibStatus
    }
}
