import CYAML

/// One parse event, copied out of libyaml's before the event is freed.
enum YAMLEvent {
    case streamStart, streamEnd, documentStart, documentEnd
    case alias(anchor: String, mark: YAMLMark)
    case scalar(value: UnsafeBufferPointer<UInt8>, anchor: String?, plain: Bool, mark: YAMLMark)
    case sequenceStart(anchor: String?, mark: YAMLMark)
    case sequenceEnd
    case mappingStart(anchor: String?, mark: YAMLMark)
    case mappingEnd
}

/// libyaml's pull parser (`yaml_parser_parse`) over bytes the caller keeps alive.
///
/// The parser lives on the heap and never moves: `yaml_parser_set_input_string` stores a
/// pointer to the parser inside the parser (`read_handler_data`), which a Swift value
/// could not keep valid. This is the only file that touches libyaml.
final class LibYAMLParser {
    private let parser: UnsafeMutablePointer<yaml_parser_t>
    /// The event whose scalar bytes the last `next()` lent out; freed by the next call.
    private var event = yaml_event_t()
    private var holdsEvent = false

    init(bytes: UnsafeBufferPointer<UInt8>) throws(YAMLError) {
        parser = .allocate(capacity: 1)
        parser.initialize(to: yaml_parser_t())
        // On failure deinit still runs (self is fully initialised) and frees the parser:
        // yaml_parser_delete takes the NULL buffers a failed initialise leaves.
        guard yaml_parser_initialize(parser) == 1 else { throw .outOfMemory }
        yaml_parser_set_input_string(parser, bytes.baseAddress, bytes.count)
    }

    deinit {
        if holdsEvent { yaml_event_delete(&event) }
        yaml_parser_delete(parser)
        parser.deallocate()
    }

    /// The next event. A scalar's bytes stay valid until the following call.
    func next() throws(YAMLError) -> YAMLEvent {
        if holdsEvent {
            yaml_event_delete(&event)
            holdsEvent = false
        }
        guard yaml_parser_parse(parser, &event) == 1 else { throw error() }
        holdsEvent = true
        let mark = YAMLMark(event.start_mark)
        switch event.type {
        case YAML_STREAM_START_EVENT: return .streamStart
        case YAML_STREAM_END_EVENT: return .streamEnd
        case YAML_DOCUMENT_START_EVENT: return .documentStart
        case YAML_DOCUMENT_END_EVENT: return .documentEnd
        case YAML_ALIAS_EVENT: return .alias(anchor: Self.string(event.data.alias.anchor) ?? "", mark: mark)
        case YAML_SCALAR_EVENT:
            let scalar = event.data.scalar
            let value = UnsafeBufferPointer(start: scalar.value, count: scalar.value == nil ? 0 : Int(clamping: scalar.length))
            return .scalar(value: value, anchor: Self.string(scalar.anchor), plain: scalar.style == YAML_PLAIN_SCALAR_STYLE, mark: mark)
        case YAML_SEQUENCE_START_EVENT: return .sequenceStart(anchor: Self.string(event.data.sequence_start.anchor), mark: mark)
        case YAML_SEQUENCE_END_EVENT: return .sequenceEnd
        case YAML_MAPPING_START_EVENT: return .mappingStart(anchor: Self.string(event.data.mapping_start.anchor), mark: mark)
        case YAML_MAPPING_END_EVENT: return .mappingEnd
        default: throw .syntax(problem: "libyaml returned an event of unknown type \(event.type.rawValue)", context: nil, mark: mark)
        }
    }

    /// libyaml's error, as its fields name it: a problem, where, and what it was parsing.
    private func error() -> YAMLError {
        let state = parser.pointee
        let problem = Self.string(state.problem) ?? "unknown error"
        switch state.error {
        case YAML_MEMORY_ERROR: return .outOfMemory
        case YAML_READER_ERROR: return .input(problem: problem, offset: Int(clamping: state.problem_offset))
        default:
            let context = Self.string(state.context).map { YAMLError.Context(text: $0, mark: YAMLMark(state.context_mark)) }
            return .syntax(problem: problem, context: context, mark: YAMLMark(state.problem_mark))
        }
    }

    private static func string(_ text: UnsafePointer<CChar>?) -> String? { text.map { String(cString: $0) } }

    private static func string(_ text: UnsafeMutablePointer<yaml_char_t>?) -> String? { text.map { String(cString: UnsafePointer($0)) } }
}

extension LibYAMLParser {
    /// Hands `body` each event of `bytes` until it returns false (the stream ended).
    /// The bytes stay pinned while libyaml reads them; withUnsafeBufferPointer does not
    /// carry a typed error out, so the one raised inside is rethrown as the YAMLError it is.
    static func forEachEvent(of bytes: [UInt8], _ body: (YAMLEvent) throws(YAMLError) -> Bool) throws(YAMLError) {
        let result: Result<Void, YAMLError> = bytes.withUnsafeBufferPointer { buffer in
            do throws(YAMLError) {
                let parser = try LibYAMLParser(bytes: buffer)
                while try body(parser.next()) {}
                return .success(())
            } catch {
                return .failure(error)
            }
        }
        try result.get()
    }
}

extension YAMLMark {
    /// libyaml counts lines and columns from 0; people, editors and SARIF from 1.
    init(_ mark: yaml_mark_t) {
        self.init(line: Int(clamping: mark.line).addingSaturated(1), column: Int(clamping: mark.column).addingSaturated(1))
    }
}

extension Int {
    fileprivate func addingSaturated(_ other: Int) -> Int {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? .max : sum
    }
}
