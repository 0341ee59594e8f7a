import NetCore
import Netlink

/// A namespace's own addresses, from rtnetlink's address dump (what `ip -o addr` reads):
/// the pod IP of a pod's namespace. Pure: requests out, bytes in, values out.
public enum InterfaceAddresses {
    static let getAddress: UInt16 = 22  // RTM_GETADDR
    static let newAddress: UInt16 = 20  // RTM_NEWADDR
    static let headerSize = 8  // struct ifaddrmsg
    static let attributeAddress: UInt16 = 1  // IFA_ADDRESS
    static let attributeLocal: UInt16 = 2  // IFA_LOCAL

    /// A dump of every address of every interface, both families.
    public static func dumpRequest(sequence: UInt32) -> [UInt8] {
        var builder = NetlinkRequestBuilder(
            type: getAddress, flags: NetlinkConstant.request | NetlinkConstant.dump, sequence: sequence)
        // struct ifaddrmsg, zeroed: family AF_UNSPEC asks for both.
        builder.appendBytes([UInt8](repeating: 0, count: headerSize))
        return builder.finish()
    }

    /// The address one RTM_NEWADDR message carries; nil for other messages. IPv4 peers
    /// (point-to-point links) carry the local side in IFA_LOCAL, which wins.
    public static func decode(_ buffer: [UInt8], _ message: NetlinkMessage) throws(NetlinkFramingError) -> IPAddress? {
        guard message.type == newAddress else { return nil }
        guard message.payload.count >= headerSize else {
            throw NetlinkFramingError(offset: message.payload.lowerBound, reason: "address message shorter than ifaddrmsg")
        }
        var address: IPAddress?
        var local: IPAddress?
        var attributes = NetlinkAttributeReader(buffer, range: (message.payload.lowerBound + headerSize)..<message.payload.upperBound)
        while let attribute = try attributes.next() {
            switch attribute.type {
            case attributeAddress: address = IPAddress(networkBytes: buffer[attribute.value])
            case attributeLocal: local = IPAddress(networkBytes: buffer[attribute.value])
            default: continue
            }
        }
        return local ?? address
    }
}
