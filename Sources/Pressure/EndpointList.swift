import JSON
import NetCore

/// The endpoints that exist, read from what `kubectl get endpointslices -A -o json` (or
/// `kubectl get endpoints -A -o json`) prints. Pure: bytes in, addresses out.
///
/// Every listed address counts as live, ready or not: a terminating or unready pod still
/// answers its established flows, and an entry pointing at it is not stale. Only an
/// address no EndpointSlice lists any more is.
public enum EndpointList {
    public static func parse(_ bytes: [UInt8], source: String) throws -> Set<IPAddress> {
        let root: JSONField
        do {
            root = JSONField(node: try JSONReader.parse(bytes))
        } catch {
            throw ParseError(source: source, line: 0, field: "file", reason: "not JSON (\(error)): give `kubectl get endpointslices -A -o json`")
        }
        do {
            var addresses: Set<IPAddress> = []
            let items: [JSONField] = root["items"].isNull ? [root] : try root["items"].array()
            var objects = 0
            for item in items {
                let kind = try item["kind"].optionalString()
                if kind == "EndpointSlice" || !item["endpoints"].isNull {
                    objects += 1
                    guard !item["endpoints"].isNull else { continue }
                    for endpoint in try item["endpoints"].array() {
                        for address in try endpoint["addresses"].array() { try insert(address, into: &addresses) }
                    }
                } else if kind == "Endpoints" || !item["subsets"].isNull {
                    objects += 1
                    guard !item["subsets"].isNull else { continue }
                    for subset in try item["subsets"].array() {
                        for list in ["addresses", "notReadyAddresses"] where !subset[list].isNull {
                            for address in try subset[list].array() { try insert(address["ip"], into: &addresses) }
                        }
                    }
                }
            }
            let listKind = try root["kind"].optionalString()
            guard objects > 0 || listKind?.hasSuffix("List") == true else {
                throw JSONError("no EndpointSlice or Endpoints object: give `kubectl get endpointslices -A -o json`")
            }
            return addresses
        } catch let error as JSONError {
            throw ParseError(source: source, line: 0, field: "endpoints", reason: error.reason)
        }
    }

    static func insert(_ field: JSONField, into addresses: inout Set<IPAddress>) throws(JSONError) {
        let text = try field.string()
        // EndpointSlices of addressType FQDN carry names, which no conntrack entry holds.
        if let address = IPAddress(text) { addresses.insert(address.unmappedV4 ?? address) }
    }
}
