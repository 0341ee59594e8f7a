/// Reading ctdoctor's JSON documents in tests: the LEAK record's shape in one place.
public enum DiagnosisJSON {
    /// The app's port a LEAK record holds (its socket's peer port).
    public static func peerPort(ofLeak leak: Any?) -> Int? {
        (((leak as? [String: Any])?["socket"] as? [String: Any])?["peer"] as? [String: Any])?["port"] as? Int
    }

    /// The peer ports of a diagnosis document's leaks of one class (`leaked` by default).
    public static func peerPorts(in diagnosis: Any?, class leakClass: String = "leaked") -> [Int] {
        let leaks = (diagnosis as? [String: Any])?["leaks"] as? [[String: Any]] ?? []
        return leaks.filter { $0["class"] as? String == leakClass }.compactMap { peerPort(ofLeak: $0) }
    }
}
