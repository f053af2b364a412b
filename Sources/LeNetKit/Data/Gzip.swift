// gzip decoding for the MNIST files, which are distributed as .gz: the only
// file that talks to zlib (PNG goes through libpng, which has its own).
import CZlib

/// Decodes gzip (and zlib) streams in memory.
enum Gzip {
    /// Whether `bytes` start with the gzip magic number 1f 8b.
    static func isGzip(_ bytes: UnsafeRawBufferPointer) -> Bool {
        bytes.count >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b
    }

    /// The decoded contents of a gzip stream.
    ///
    /// Concatenated members (`cat a.gz b.gz`) decode to the concatenation of
    /// their contents, as `gunzip` does.
    ///
    /// - Parameters:
    ///   - bytes: the compressed stream.
    ///   - subject: the file it came from, for error messages.
    ///   - limit: the most bytes it may decode to. gzip can expand a thousandfold,
    ///     so a small hostile file could otherwise fill memory.
    /// - Throws: `LeNetError` (subject `subject`) when the stream is truncated,
    ///   corrupt (bad header, bad data, CRC or length mismatch), decodes to more
    ///   than `limit` bytes, or memory runs out.
    static func decompress(_ bytes: [UInt8], subject: String = "<memory>", limit: Int = Int.max) throws -> [UInt8] {
        try bytes.withUnsafeBytes { try decompress($0, subject: subject, limit: limit) }
    }

    /// The decoded contents of a gzip stream; see `decompress(_:subject:limit:)`.
    static func decompress(_ input: UnsafeRawBufferPointer, subject: String, limit: Int = Int.max) throws -> [UInt8] {
        guard let inputBase = input.baseAddress, !input.isEmpty else {
            throw LeNetError("truncated gzip stream: the file is empty", subject: subject)
        }
        var stream = z_stream()
        // 15 + 32: a 32 KB window, and accept a gzip or zlib header.
        let initStatus = inflateInit2_(&stream, 15 + 32, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard initStatus == Z_OK else {
            throw LeNetError("zlib could not start (inflateInit2 returned \(initStatus))", subject: subject)
        }
        defer { inflateEnd(&stream) }

        // One byte beyond the limit tells a stream of exactly `limit` bytes
        // from a longer one.
        let capacity = limit == Int.max ? Int.max : max(limit, 0) + 1
        var output = [UInt8](repeating: 0, count: min(initialCapacity(input), capacity))  // grows by doubling
        var produced = 0  // bytes of output written
        var consumed = 0  // bytes of input handed to zlib
        // zlib's input pointer is mutable in C but never written through.
        let inputStart = UnsafeMutablePointer(mutating: inputBase.assumingMemoryBound(to: UInt8.self))

        while true {
            if stream.avail_in == 0 && consumed < input.count {
                let chunk = min(input.count - consumed, Int(UInt32.max))
                stream.next_in = inputStart + consumed
                stream.avail_in = UInt32(chunk)
                consumed += chunk
            }
            if produced == output.count {
                output.append(contentsOf: repeatElement(0, count: min(output.count, capacity - output.count)))
            }
            let room = min(output.count - produced, Int(UInt32.max))
            let status: Int32 = output.withUnsafeMutableBufferPointer { out in
                // Non-empty: `output` never shrinks below its initial, positive size.
                stream.next_out = out.baseAddress.map { $0 + produced }
                stream.avail_out = UInt32(room)
                return inflate(&stream, Z_NO_FLUSH)
            }
            produced += room - Int(stream.avail_out)
            if produced > limit {
                throw LeNetError("the gzip stream decodes to more than \(limit) bytes, the most allowed here "
                                     + "(after \(consumed - Int(stream.avail_in)) compressed bytes)",
                                 subject: subject)
            }

            switch status {
            case Z_STREAM_END:
                let position = consumed - Int(stream.avail_in)  // first byte after this member
                if position == input.count {
                    output.removeLast(output.count - produced)
                    return output
                }
                guard isGzip(UnsafeRawBufferPointer(rebasing: input[position...])) else {
                    throw LeNetError(
                        "\(input.count - position) bytes of trailing data after the gzip stream "
                            + "(\(produced) bytes decoded)",
                        subject: subject)
                }
                // Another member follows.
                guard inflateReset(&stream) == Z_OK else {
                    throw LeNetError("zlib could not restart for the next gzip member", subject: subject)
                }
            case Z_OK, Z_BUF_ERROR:
                // Out of input while the stream wants more: the file was cut short.
                if stream.avail_in == 0 && consumed == input.count && stream.avail_out > 0 {
                    throw LeNetError(
                        "truncated gzip stream: it ends after \(input.count) compressed bytes "
                            + "(\(produced) bytes decoded) before its end marker",
                        subject: subject)
                }
            case Z_MEM_ERROR:
                throw LeNetError("out of memory while decoding gzip (\(produced) bytes decoded)",
                                 subject: subject)
            default:  // Z_DATA_ERROR, Z_NEED_DICT, Z_STREAM_ERROR
                let reason = stream.msg.map { String(cString: $0) } ?? "error \(status)"
                throw LeNetError(
                    "corrupt gzip stream: \(reason) (after \(consumed - Int(stream.avail_in)) "
                        + "compressed bytes, \(produced) bytes decoded)",
                    subject: subject)
            }
        }
    }

    /// A first output size: the length the gzip trailer records (the size mod
    /// 2^32 of the last member), so the MNIST files decode without regrowing.
    /// It is trusted only up to 64 times the input, so a corrupt trailer cannot
    /// demand gigabytes; a stream that expands more grows by doubling.
    private static func initialCapacity(_ input: UnsafeRawBufferPointer) -> Int {
        var recorded = 0
        if input.count >= 18 {
            for i in 0..<4 { recorded |= Int(input[input.count - 4 + i]) << (8 * i) }
        }
        let most = input.count.multipliedReportingOverflow(by: 64)
        let cap = most.overflow ? Int.max : most.partialValue
        return max(min(recorded, cap), 64 * 1024)
    }
}
