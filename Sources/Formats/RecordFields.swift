import JSON
import NetCore

/// Field readers the records share, failing with the field's place like the reader's own.
extension JSONField {
    func address() throws(JSONError) -> IPAddress {
        let text = try string()
        guard let address = IPAddress(text) else { throw fail("\(ParseError.quote(Array(text.utf8))) is not an IP address") }
        return address
    }

    func family() throws(JSONError) -> AddressFamily {
        let text = try string()
        guard let family = AddressFamily.allCases.first(where: { $0.name == text }) else { throw fail("\(text) is not ipv4 or ipv6") }
        return family
    }
}
