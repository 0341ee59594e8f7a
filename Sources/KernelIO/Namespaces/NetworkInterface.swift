/// Network devices of the namespace the calling thread is in.
public enum NetworkInterface {
    /// The device's name by index, as `ip link` shows it; nil when no device has it.
    /// Call inside `NetworkNamespace.run`: indexes are per namespace.
    public static func name(ofIndex index: UInt32) -> String? { interfaceNameOf(index: index) }
}
