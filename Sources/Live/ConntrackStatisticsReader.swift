import Conntrack
import KernelIO
import Netlink

/// Reads a namespace's conntrack statistics: every CPU's counters and the table's count
/// and limit, over ctnetlink as `conntrack -S` and `conntrack -C` do. Those requests
/// answer on every kernel with ctnetlink; /proc/net/stat/nf_conntrack, read only when
/// netlink refuses (no CAP_NET_ADMIN), needs CONFIG_NF_CONNTRACK_PROCFS, which many
/// kernels leave out.
public struct ConntrackStatisticsReader: Sendable {
    public typealias TransportFactory = @Sendable () throws -> any NetlinkTransport
    /// Reads /proc/net/stat/nf_conntrack and the nf_conntrack_max sysctl (in the right
    /// namespace), for when netlink refuses.
    public typealias FallbackFiles = @Sendable () throws -> (statistics: [UInt8], maximum: String?)

    let makeTransport: TransportFactory
    let readFallbackFiles: FallbackFiles

    public init(transportFactory: @escaping TransportFactory, fallbackFiles: @escaping FallbackFiles) {
        self.makeTransport = transportFactory
        self.readFallbackFiles = fallbackFiles
    }

    public init(namespace: NetworkNamespace, procfs: ProcFS = ProcFS()) {
        self.init(
            transportFactory: { try namespace.run { try NetlinkSocket(bus: .netfilter) } },
            fallbackFiles: {
                try namespace.run {
                    (try procfs.read("\(procfs.root)/thread-self/net/stat/nf_conntrack", limit: 1 << 20),
                     try? procfs.readSysctl("net/netfilter/nf_conntrack_max"))
                }
            })
    }

    public func read() throws -> ConntrackStatistics {
        do {
            let transport = try makeTransport()
            var sequence = UInt32.random(in: 1...(UInt32.max / 2))
            var perCPU: [ConntrackCPUStatistics] = []
            _ = try NetlinkDump.run(transport: transport, request: ConntrackRequest.statisticsPerCPU(sequence: sequence), sequence: sequence) {
                buffer, message in
                guard ConntrackStatisticsDecoder.carriesCPUStatistics(message) else { return }
                perCPU.append(try ConntrackStatisticsDecoder.decodeCPU(buffer, message))
            }
            sequence &+= 1
            var global: (entries: Int?, maximum: Int?) = (nil, nil)
            _ = try NetlinkDump.run(transport: transport, request: ConntrackRequest.statistics(sequence: sequence), sequence: sequence) {
                buffer, message in
                guard ConntrackStatisticsDecoder.carriesGlobalStatistics(message) else { return }
                global = try ConntrackStatisticsDecoder.decodeGlobal(buffer, message)
            }
            return ConntrackStatistics(perCPU: perCPU, entries: global.entries, maximum: global.maximum, source: .netlink)
        } catch let error as KernelIOError where error.errno == .protocolNotSupported {
            throw ConntrackReadError.unavailable(cause: error)
        } catch let error as NetlinkKernelError where error.errno == .notPermitted || error.errno == .permissionDenied {
            return try fallback(refusal: error)
        } catch let error as NetlinkKernelError where error.errno == .protocolNotSupported || error.errno == .noSuchFileOrDirectory {
            throw ConntrackReadError.unavailable(cause: error)
        } catch let error as NetlinkKernelError where error.errno == .invalidArgument {
            // nfnetlink's answer when nf_conntrack_netlink is not loaded.
            return try fallback(refusal: error)
        } catch let error as NetlinkFramingError {
            throw ConntrackReadError.dumpFailed(cause: error, note: "(statistics)")
        } catch let error as KernelIOError {
            throw ConntrackReadError.dumpFailed(cause: error, note: "(statistics)")
        }
    }

    private func fallback(refusal: NetlinkKernelError) throws -> ConntrackStatistics {
        let files: (statistics: [UInt8], maximum: String?)
        do {
            files = try readFallbackFiles()
        } catch {
            throw ConntrackReadError.permissionDenied(
                cause: refusal,
                note: "ctnetlink refused the statistics request and /proc/net/stat/nf_conntrack is not readable (\(error); kernels without CONFIG_NF_CONNTRACK_PROCFS have none)")
        }
        var statistics = try ConntrackStatisticsText.parse(files.statistics, source: "/proc/net/stat/nf_conntrack")
        statistics.maximum = files.maximum.flatMap { Int($0) }
        return statistics
    }
}
