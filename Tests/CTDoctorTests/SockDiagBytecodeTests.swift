import Sockets
import Testing

/// A model of the kernel's inet_diag bytecode audit and interpreter
/// (net/ipv4/inet_diag.c: inet_diag_bc_audit, valid_cc, inet_diag_bc_run), enough for
/// the port tests ctdoctor emits. The kernel answers a program it dislikes with EINVAL
/// and nothing more, so the layout is checked here.
struct BytecodeModel {
    let program: [UInt8]

    func op(_ offset: Int) -> (code: UInt8, yes: Int, no: Int) {
        (program[offset], Int(program[offset + 1]), Int(program[offset + 2]) | Int(program[offset + 3]) << 8)
    }

    func validCC(_ target: Int) -> Bool {
        var length = program.count
        var offset = 0
        while length > 0 {
            if target == length { return true }
            if target > length { return false }
            let yes = op(offset).yes
            length -= yes
            offset += yes
        }
        return false
    }

    func audit() -> Bool {
        var length = program.count
        var offset = 0
        while length > 0 {
            let current = op(offset)
            var minimum = 4
            switch current.code {
            case 2, 3, 4, 5, 11, 12: minimum = 8  // port comparisons carry a second op
            case 0, 1: break
            default: return false
            }
            if current.code != 0 {
                if current.no < minimum || current.no > length + 4 || current.no & 3 != 0 { return false }
                if current.no < length && !validCC(length - current.no) { return false }
            }
            if current.yes < minimum || current.yes > length + 4 || current.yes & 3 != 0 { return false }
            offset += current.yes
            length -= current.yes
        }
        return true
    }

    func accepts(sourcePort: UInt16) -> Bool {
        var length = program.count
        var offset = 0
        while length > 0 {
            let current = op(offset)
            var yes = true
            switch current.code {
            case 0: yes = true  // NOP
            case 1: yes = false  // JMP
            case 2: yes = sourcePort >= UInt16(op(offset + 4).no)  // S_GE
            case 3: yes = sourcePort <= UInt16(op(offset + 4).no)  // S_LE
            case 11: yes = sourcePort == UInt16(op(offset + 4).no)  // S_EQ
            default: return false
            }
            let step = yes ? current.yes : current.no
            length -= step
            offset += step
        }
        return length == 0
    }
}

@Suite("sock_diag bytecode")
struct SockDiagBytecodeTests {
    @Test(arguments: [[15001], [15001, 15006], [4140, 4143, 15001, 15006], Array(UInt16(40000)..<UInt16(40300))])
    func portListsPassTheAuditAndMatchExactlyTheirPorts(ports: [UInt16]) {
        let model = BytecodeModel(program: SockDiagCodec.localPortBytecode(ports))
        #expect(model.audit())
        for port in ports { #expect(model.accepts(sourcePort: port), "port \(port)") }
        for port: UInt16 in [0, 1, 80, 15000, 15002, 39999, 40300, 65535] where !ports.contains(port) {
            #expect(!model.accepts(sourcePort: port), "port \(port)")
        }
    }

    @Test func aPortRangeTakesTwoTestsWhateverItsSize() {
        let program = SockDiagCodec.localPortRangeBytecode(32768...60999)
        #expect(program.count == 16)
        let model = BytecodeModel(program: program)
        #expect(model.audit())
        for (port, inside) in [(UInt16(32767), false), (32768, true), (45000, true), (60999, true), (61000, false), (15001, false)] {
            #expect(model.accepts(sourcePort: port) == inside, "port \(port)")
        }
    }

    @Test func theFirstLayoutTriedIsTheOneTheKernelRefused() {
        // "Jump straight to the end on a match": the miss target is off the yes-chain,
        // which inet_diag_bc_audit rejects with EINVAL. The model must say so too.
        let refused: [UInt8] = [11, 16, 8, 0, 0, 0, 0x99, 0x3A, 11, 8, 12, 0, 0, 0, 0x9E, 0x3A]
        #expect(!BytecodeModel(program: refused).audit())
    }
}
