function __ctdoctor_should_offer_completions_for_flags_or_options -a expected_commands
    set -l non_repeating_flags_or_options $argv[2..]
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __ctdoctor_parse_tokens
    test "$commands" = "$expected_commands"; and return $non_repeating_flags_or_options_absent
end

function __ctdoctor_should_offer_completions_for_positional -a expected_commands positional_index_comparison expected_positional_index
    set -l non_repeating_flags_or_options
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __ctdoctor_parse_tokens
    test "$commands" = "$expected_commands" -a \( "$positional_index" "$positional_index_comparison" "$expected_positional_index" \)
end

function __ctdoctor_parse_tokens -S
    set -l unparsed_tokens (__ctdoctor_tokens -pc)
    switch $unparsed_tokens[1]
    case 'ctdoctor'
        __ctdoctor_parse_subcommand 0 'version' 'h/help'
        switch $unparsed_tokens[1]
        case 'diagnose'
            __ctdoctor_parse_subcommand 0 'netns=' 'from=' 'conntrack-file=' 'sockets-file=' 'all-netns' 'pod=' 'parallel=' 'format=' 'sidecar=' 'idle-timeout=' 'connect-rate=' 'stall-after=' 'server-first=+' 'fail-on=' 'version' 'h/help'
        case 'leaks'
            __ctdoctor_parse_subcommand 0 'netns=' 'from=' 'conntrack-file=' 'sockets-file=' 'all-netns' 'pod=' 'parallel=' 'format=' 'sidecar=' 'idle-timeout=' 'connect-rate=' 'stall-after=' 'server-first=+' 'fail-on=' 'reap' 'yes' 'min-idle=' 'version' 'h/help'
        case 'collisions'
            __ctdoctor_parse_subcommand 0 'netns=' 'from=' 'conntrack-file=' 'sockets-file=' 'all-netns' 'pod=' 'parallel=' 'format=' 'sidecar=' 'idle-timeout=' 'connect-rate=' 'stall-after=' 'server-first=+' 'fail-on=' 'version' 'h/help'
        case 'lint'
            __ctdoctor_parse_subcommand -r 1 'format=' 'mesh=' 'server-first=+' 'fail-on=' 'list-rules' 'version' 'h/help'
        case 'conntrack'
            __ctdoctor_parse_subcommand 0 'netns=' 'format=' 'proto=' 'state=+' 'port=' 'dnat-only' 'reply-src-port=' 'count' 'version' 'h/help'
        case 'sockets'
            __ctdoctor_parse_subcommand 0 'netns=' 'format=' 'state=+' 'port=' 'p/processes' 'count' 'version' 'h/help'
        case 'snapshot'
            __ctdoctor_parse_subcommand 0 'netns=' 'output=' 'gzip' 'version' 'h/help'
        case 'pressure'
            __ctdoctor_parse_subcommand 0 'netns=' 'format=' 'all-netns' 'pod=' 'parallel=' 'interval=' 'top=' 'unreplied-after=' 'endpoints=' 'reap' 'yes' 'conntrack-file=' 'stats-file=' 'sysctl-file=' 'fail-on=' 'version' 'h/help'
        case 'watch'
            __ctdoctor_parse_subcommand 0 'netns=' 'format=' 'all-netns' 'pod=' 'sidecar=' 'duration=' 'textfile=' 'listen=' 'stall-after=' 'event-buffer=' 'kernel-filter=' 'version' 'h/help'
        case 'export'
            __ctdoctor_parse_subcommand 0 'netns=' 'from=' 'conntrack-file=' 'sockets-file=' 'all-netns' 'pod=' 'parallel=' 'format=' 'output=' 'every=' 'sidecar=' 'idle-timeout=' 'connect-rate=' 'stall-after=' 'server-first=+' 'fail-on=' 'version' 'h/help'
        case 'lab'
            __ctdoctor_parse_subcommand 1 'format=' 'close-wait=' 'keep' 'emulate-old-kernel' 'connect-timeout=' 'mesh=' 'leaks=' 'connects=' 'sidecar=' 'idle-timeout=' 'connect-rate=' 'stall-after=' 'server-first=+' 'fail-on=' 'version' 'h/help'
        case 'help'
            __ctdoctor_parse_subcommand -r 1 'version'
        end
    end
end

function __ctdoctor_tokens
    if test (string split -m 1 -f 1 -- . "$FISH_VERSION") -gt 3
        commandline --tokens-raw $argv
    else
        commandline -o $argv
    end
end

function __ctdoctor_parse_subcommand -S -a positional_count
    argparse -s r -- $argv
    set -l option_specs $argv[2..]
    set -l is_repeating_positional $_flag_r
    set -el _flag_r
    set -a commands $unparsed_tokens[1]
    set positional_index 0
    while true
        set -e unparsed_tokens[1]
        argparse -sn "$commands" $option_specs -- $unparsed_tokens 2> /dev/null
        set unparsed_tokens $argv
        set positional_index (math $positional_index + 1)
        for non_repeating_flag_or_option in $non_repeating_flags_or_options
            if set -ql "_flag_$(string replace -a - _ -- $non_repeating_flag_or_option)"
                set non_repeating_flags_or_options_absent 1
                break
            end
        end
        test (count $unparsed_tokens) -eq 0 -o \( -z "$is_repeating_positional" -a "$positional_index" -gt "$positional_count" \) && break
    end
end

function __ctdoctor_complete_directories
    set -l token (commandline -t)
    string match -- '*/' $token
    set -l subdirs $token*/
    printf %s\n $subdirs
end

function __ctdoctor_custom_completion
    set -x SAP_SHELL fish
    set -x SAP_SHELL_VERSION $FISH_VERSION
    set -l tokens (__ctdoctor_tokens -p)
    if test -z "$(__ctdoctor_tokens -t)"
        set -l index (count (__ctdoctor_tokens -pc))
        set tokens $tokens[..$index] \'\' $tokens[(math $index + 1)..]
    end
    command $tokens[1] $argv $tokens
end

complete -c 'ctdoctor' -f
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor" version' -l 'version' -d 'Show the version.'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_positional "ctdoctor" -eq 1' -fa 'diagnose' -d 'Find sidecar sockets leaked by half-closes, the ports they poison, whether this kernel recovers from the collisions, and stalled server-first connections.'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_positional "ctdoctor" -eq 1' -fa 'leaks' -d 'List sidecar sockets stuck in FIN_WAIT2 after a half-close: leaked, at risk or healthy.'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_positional "ctdoctor" -eq 1' -fa 'collisions' -d 'Predict ephemeral-port collisions with leaked sidecar sockets, and detect live ones.'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_positional "ctdoctor" -eq 1' -fa 'lint' -d 'Find server-first protocols (MySQL, SMTP, NATS, FTP…) that a sidecar\'s protocol detection stalls, in Kubernetes manifests.'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_positional "ctdoctor" -eq 1' -fa 'conntrack' -d 'List the conntrack table of a network namespace.'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_positional "ctdoctor" -eq 1' -fa 'sockets' -d 'List the TCP sockets of a network namespace, with idle times and owners.'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_positional "ctdoctor" -eq 1' -fa 'snapshot' -d 'Capture everything a diagnosis reads into one file, for offline analysis with --from.'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_positional "ctdoctor" -eq 1' -fa 'pressure' -d 'Say what fills the conntrack table: fill, states, timeouts, top destinations, sources and pods, the kernel\'s drop and insert-race counters, and stale DNAT entries.'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_positional "ctdoctor" -eq 1' -fa 'watch' -d 'Watch a namespace, a pod or the whole node, and report each leak the moment conntrack forgets its flow, and when it ends.'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_positional "ctdoctor" -eq 1' -fa 'export' -d 'Diagnose and write the findings for monitoring: Prometheus text exposition or JSON.'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_positional "ctdoctor" -eq 1' -fa 'lab' -d 'Reproduce a half-close leak, a port collision or a server-first stall in a throwaway namespace, then diagnose it.'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_positional "ctdoctor" -eq 1' -fa 'help' -d 'Show subcommand help information.'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor diagnose" netns' -l 'netns' -d 'The network namespace to read: a name from `ip netns list`, a path to a namespace file, or a PID (its /proc/PID/ns/net). Default: ctdoctor\'s own.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor diagnose" from' -l 'from' -d 'Diagnose a snapshot taken with `ctdoctor snapshot` (plain or gzip; - for standard input) instead of a live namespace.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor diagnose" conntrack-file' -l 'conntrack-file' -d 'The conntrack table as copied from elsewhere: conntrack -L (any -o), -o xml, /proc/net/nf_conntrack, or ctdoctor JSON. With --sockets-file.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor diagnose" sockets-file' -l 'sockets-file' -d 'The TCP sockets as copied from elsewhere: /proc/net/tcp{,6}, ss -tanpoi (or -tan, -naoep), or ctdoctor JSON. With --conntrack-file.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor diagnose" all-netns' -l 'all-netns' -d 'Diagnose every network namespace on the node (each process\'s, and those under /var/run/netns), named by their pods where the processes\' files tell.'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor diagnose" pod' -l 'pod' -d 'Diagnose the namespace of this pod only: NAME or NAMESPACE/NAME as the container runtime, HOSTNAME or /etc/hostname name it, or an ip netns name.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor diagnose" parallel' -l 'parallel' -d 'With --all-netns: how many namespaces to diagnose at once.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor diagnose" format' -l 'format' -d 'Output format: an aligned table for people, one JSON document, or one JSON object per line.' -rfka 'table json ndjson'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor diagnose" sidecar' -l 'sidecar' -d 'The sidecar: istio, asm, ambient (ztunnel), linkerd, or ports:OUT,IN. Default: detected from the listening sockets and their process.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor diagnose" idle-timeout' -l 'idle-timeout' -d 'The proxy\'s TCP idle timeout (1h, 90s, 0 for disabled). Default: ISTIO_META_IDLE_TIMEOUT from the proxy\'s environment, else Envoy\'s 1h.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor diagnose" connect-rate' -l 'connect-rate' -d 'Captured connects per second, for the collision model. Default: estimated from Tcp ActiveOpens over the proxy\'s uptime.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor diagnose" stall-after' -l 'stall-after' -d 'An accepted connection silent both ways this long is stalled (5s, 30s…). Default: 5s (2s in the server-first lab).' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor diagnose"' -l 'server-first' -d 'Also treat this port as serving a server-first protocol, optionally named; repeat for several.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor diagnose" fail-on' -l 'fail-on' -d 'Exit 1 when a finding is at least this severe: info, warning, error or never.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor diagnose" version' -l 'version' -d 'Show the version.'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor diagnose" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor leaks" netns' -l 'netns' -d 'The network namespace to read: a name from `ip netns list`, a path to a namespace file, or a PID (its /proc/PID/ns/net). Default: ctdoctor\'s own.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor leaks" from' -l 'from' -d 'Diagnose a snapshot taken with `ctdoctor snapshot` (plain or gzip; - for standard input) instead of a live namespace.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor leaks" conntrack-file' -l 'conntrack-file' -d 'The conntrack table as copied from elsewhere: conntrack -L (any -o), -o xml, /proc/net/nf_conntrack, or ctdoctor JSON. With --sockets-file.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor leaks" sockets-file' -l 'sockets-file' -d 'The TCP sockets as copied from elsewhere: /proc/net/tcp{,6}, ss -tanpoi (or -tan, -naoep), or ctdoctor JSON. With --conntrack-file.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor leaks" all-netns' -l 'all-netns' -d 'Diagnose every network namespace on the node (each process\'s, and those under /var/run/netns), named by their pods where the processes\' files tell.'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor leaks" pod' -l 'pod' -d 'Diagnose the namespace of this pod only: NAME or NAMESPACE/NAME as the container runtime, HOSTNAME or /etc/hostname name it, or an ip netns name.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor leaks" parallel' -l 'parallel' -d 'With --all-netns: how many namespaces to diagnose at once.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor leaks" format' -l 'format' -d 'Output format: an aligned table for people, one JSON document, or one JSON object per line.' -rfka 'table json ndjson'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor leaks" sidecar' -l 'sidecar' -d 'The sidecar: istio, asm, ambient (ztunnel), linkerd, or ports:OUT,IN. Default: detected from the listening sockets and their process.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor leaks" idle-timeout' -l 'idle-timeout' -d 'The proxy\'s TCP idle timeout (1h, 90s, 0 for disabled). Default: ISTIO_META_IDLE_TIMEOUT from the proxy\'s environment, else Envoy\'s 1h.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor leaks" connect-rate' -l 'connect-rate' -d 'Captured connects per second, for the collision model. Default: estimated from Tcp ActiveOpens over the proxy\'s uptime.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor leaks" stall-after' -l 'stall-after' -d 'An accepted connection silent both ways this long is stalled (5s, 30s…). Default: 5s (2s in the server-first lab).' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor leaks"' -l 'server-first' -d 'Also treat this port as serving a server-first protocol, optionally named; repeat for several.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor leaks" fail-on' -l 'fail-on' -d 'Exit 1 when a finding is at least this severe: info, warning, error or never.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor leaks" reap' -l 'reap' -d 'Destroy leaked sidecar sockets (SOCK_DESTROY), after re-verifying each one; a dry run unless --yes.'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor leaks" yes' -l 'yes' -d 'With --reap: really destroy them.'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor leaks" min-idle' -l 'min-idle' -d 'With --reap: only sockets idle at least this long.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor leaks" version' -l 'version' -d 'Show the version.'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor leaks" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor collisions" netns' -l 'netns' -d 'The network namespace to read: a name from `ip netns list`, a path to a namespace file, or a PID (its /proc/PID/ns/net). Default: ctdoctor\'s own.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor collisions" from' -l 'from' -d 'Diagnose a snapshot taken with `ctdoctor snapshot` (plain or gzip; - for standard input) instead of a live namespace.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor collisions" conntrack-file' -l 'conntrack-file' -d 'The conntrack table as copied from elsewhere: conntrack -L (any -o), -o xml, /proc/net/nf_conntrack, or ctdoctor JSON. With --sockets-file.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor collisions" sockets-file' -l 'sockets-file' -d 'The TCP sockets as copied from elsewhere: /proc/net/tcp{,6}, ss -tanpoi (or -tan, -naoep), or ctdoctor JSON. With --conntrack-file.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor collisions" all-netns' -l 'all-netns' -d 'Diagnose every network namespace on the node (each process\'s, and those under /var/run/netns), named by their pods where the processes\' files tell.'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor collisions" pod' -l 'pod' -d 'Diagnose the namespace of this pod only: NAME or NAMESPACE/NAME as the container runtime, HOSTNAME or /etc/hostname name it, or an ip netns name.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor collisions" parallel' -l 'parallel' -d 'With --all-netns: how many namespaces to diagnose at once.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor collisions" format' -l 'format' -d 'Output format: an aligned table for people, one JSON document, or one JSON object per line.' -rfka 'table json ndjson'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor collisions" sidecar' -l 'sidecar' -d 'The sidecar: istio, asm, ambient (ztunnel), linkerd, or ports:OUT,IN. Default: detected from the listening sockets and their process.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor collisions" idle-timeout' -l 'idle-timeout' -d 'The proxy\'s TCP idle timeout (1h, 90s, 0 for disabled). Default: ISTIO_META_IDLE_TIMEOUT from the proxy\'s environment, else Envoy\'s 1h.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor collisions" connect-rate' -l 'connect-rate' -d 'Captured connects per second, for the collision model. Default: estimated from Tcp ActiveOpens over the proxy\'s uptime.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor collisions" stall-after' -l 'stall-after' -d 'An accepted connection silent both ways this long is stalled (5s, 30s…). Default: 5s (2s in the server-first lab).' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor collisions"' -l 'server-first' -d 'Also treat this port as serving a server-first protocol, optionally named; repeat for several.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor collisions" fail-on' -l 'fail-on' -d 'Exit 1 when a finding is at least this severe: info, warning, error or never.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor collisions" version' -l 'version' -d 'Show the version.'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor collisions" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor lint" format' -l 'format' -d 'Output: compiler-style lines, JSON, or SARIF 2.1.0.' -rfka 'table json sarif'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor lint" mesh' -l 'mesh' -d 'Which mesh\'s rules: auto (from injection annotations and labels; Istio where none says), istio, linkerd.' -rfka 'auto istio linkerd'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor lint"' -l 'server-first' -d 'Also treat this port as serving a server-first protocol, optionally named; repeat for several.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor lint" fail-on' -l 'fail-on' -d 'Exit 1 when a finding is at least this severe: info, warning, error or never.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor lint" list-rules' -l 'list-rules' -d 'List the rules and exit.'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor lint" version' -l 'version' -d 'Show the version.'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor lint" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor conntrack" netns' -l 'netns' -d 'The network namespace to read: a name from `ip netns list`, a path to a namespace file, or a PID (its /proc/PID/ns/net). Default: ctdoctor\'s own.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor conntrack" format' -l 'format' -d 'Output format: an aligned table for people, one JSON document, or one JSON object per line.' -rfka 'table json ndjson'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor conntrack" proto' -l 'proto' -d 'Only this protocol, by name or number (tcp, udp, icmp, 6...).' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor conntrack"' -l 'state' -d 'Only entries in this state (ESTABLISHED, CLOSE_WAIT, TIME_WAIT...); repeat for several.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor conntrack" port' -l 'port' -d 'Only entries with this port on either side of either tuple.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor conntrack" dnat-only' -l 'dnat-only' -d 'Only entries whose destination was rewritten (DNAT, REDIRECT).'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor conntrack" reply-src-port' -l 'reply-src-port' -d 'Only entries whose reply comes from this port (15001: captured by the Istio outbound listener).' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor conntrack" count' -l 'count' -d 'Print only how many entries match.'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor conntrack" version' -l 'version' -d 'Show the version.'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor conntrack" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor sockets" netns' -l 'netns' -d 'The network namespace to read: a name from `ip netns list`, a path to a namespace file, or a PID (its /proc/PID/ns/net). Default: ctdoctor\'s own.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor sockets" format' -l 'format' -d 'Output format: an aligned table for people, one JSON document, or one JSON object per line.' -rfka 'table json ndjson'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor sockets"' -l 'state' -d 'Only sockets in this state (ESTABLISHED, FIN_WAIT2, CLOSE_WAIT, TIME_WAIT, LISTEN..., ss spellings too); repeat for several. Without it, every state /proc/net/tcp lists; CLOSE (or BOUND_INACTIVE) adds the sockets that are only bound, Linux 6.8+.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor sockets" port' -l 'port' -d 'Only sockets with this local or peer port.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor sockets" p processes' -l 'processes' -s 'p' -d 'Show the processes holding each socket.'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor sockets" count' -l 'count' -d 'Print only how many sockets match.'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor sockets" version' -l 'version' -d 'Show the version.'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor sockets" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor snapshot" netns' -l 'netns' -d 'The network namespace to read: a name from `ip netns list`, a path to a namespace file, or a PID (its /proc/PID/ns/net). Default: ctdoctor\'s own.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor snapshot" output' -l 'output' -d 'Write here, atomically, instead of standard output.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor snapshot" gzip' -l 'gzip' -d 'gzip-compress (also implied by an --output ending in .gz).'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor snapshot" version' -l 'version' -d 'Show the version.'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor snapshot" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor pressure" netns' -l 'netns' -d 'The network namespace to read: a name from `ip netns list`, a path to a namespace file, or a PID (its /proc/PID/ns/net). Default: ctdoctor\'s own.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor pressure" format' -l 'format' -d 'Output format: an aligned table for people, one JSON document, or one JSON object per line.' -rfka 'table json ndjson'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor pressure" all-netns' -l 'all-netns' -d 'Diagnose every network namespace on the node (each process\'s, and those under /var/run/netns), named by their pods where the processes\' files tell.'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor pressure" pod' -l 'pod' -d 'Diagnose the namespace of this pod only: NAME or NAMESPACE/NAME as the container runtime, HOSTNAME or /etc/hostname name it, or an ip netns name.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor pressure" parallel' -l 'parallel' -d 'With --all-netns: how many namespaces to diagnose at once.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor pressure" interval' -l 'interval' -d 'How long to watch the kernel\'s counters grow (seconds or 10s, 1m); 0 reads them once.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor pressure" top' -l 'top' -d 'How many destinations, sources and pods to list.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor pressure" unreplied-after' -l 'unreplied-after' -d 'Report UNREPLIED entries older than this.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor pressure" endpoints' -l 'endpoints' -d 'EndpointSlices as `kubectl get endpointslices -A -o json` prints them (or Endpoints): entries DNATed elsewhere are stale.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor pressure" reap' -l 'reap' -d 'With --endpoints: delete the stale entries (re-checked each), a dry run unless --yes.'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor pressure" yes' -l 'yes' -d 'With --reap: really delete them.'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor pressure" conntrack-file' -l 'conntrack-file' -d 'A copied table instead of a live namespace: conntrack -L (any -o), -o xml, /proc/net/nf_conntrack, or ctdoctor JSON.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor pressure" stats-file' -l 'stats-file' -d 'With --conntrack-file: `conntrack -S` output or /proc/net/stat/nf_conntrack from the same namespace.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor pressure" sysctl-file' -l 'sysctl-file' -d 'With --conntrack-file: `sysctl -a | grep nf_conntrack` from the same namespace (timeouts, max, buckets).' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor pressure" fail-on' -l 'fail-on' -d 'Exit 1 when a finding is at least this severe: info, warning, error or never.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor pressure" version' -l 'version' -d 'Show the version.'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor pressure" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor watch" netns' -l 'netns' -d 'The network namespace to read: a name from `ip netns list`, a path to a namespace file, or a PID (its /proc/PID/ns/net). Default: ctdoctor\'s own.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor watch" format' -l 'format' -d 'Output format: an aligned table for people, one JSON document, or one JSON object per line.' -rfka 'table json ndjson'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor watch" all-netns' -l 'all-netns' -d 'Watch every network namespace on the node, pods that appear included (the node is listed again every 5 s); each event names its namespace and pod.'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor watch" pod' -l 'pod' -d 'Watch the namespace of this pod only (NAME, NAMESPACE/NAME or an ip netns name), and its next one when the pod is recreated.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor watch" sidecar' -l 'sidecar' -d 'The sidecar: istio, asm, ambient (ztunnel), linkerd, or ports:OUT,IN. Default: detected.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor watch" duration' -l 'duration' -d 'Stop after this long (30s, 10m, 1h). Default: until stopped.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor watch" textfile' -l 'textfile' -d 'Also keep Prometheus counters of what was seen in this file (for node_exporter\'s textfile collector), rewritten atomically at most once a second and at the end.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor watch" listen' -l 'listen' -d 'Serve the same counters for Prometheus at http://ADDRESS:PORT/metrics: PORT alone listens on 127.0.0.1; :PORT (or 0.0.0.0:PORT, [::]:PORT) lets other hosts scrape it.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor watch" stall-after' -l 'stall-after' -d 'An accepted connection on a capture port silent both ways this long is a stall, reported when first seen (scans every 5 s) and when it ends. Default: 5s.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor watch" event-buffer' -l 'event-buffer' -d 'Each event socket\'s receive buffer: room for a burst of conntrack events before the kernel drops some (events-lost). 64K to 256M, in bytes or with K or M. Default: 8M, or 2M each with --all-netns and --pod.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor watch" kernel-filter' -l 'kernel-filter' -d 'Which conntrack events the kernel hands over: ports (the TCP flows a capture port answers, when new, on reaching ESTABLISHED and when destroyed before the close finished: all that watch judges), tcp (every TCP event, as a protocol filter keeps) or off (every event).' -rfka 'ports tcp off'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor watch" version' -l 'version' -d 'Show the version.'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor watch" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor export" netns' -l 'netns' -d 'The network namespace to read: a name from `ip netns list`, a path to a namespace file, or a PID (its /proc/PID/ns/net). Default: ctdoctor\'s own.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor export" from' -l 'from' -d 'Diagnose a snapshot taken with `ctdoctor snapshot` (plain or gzip; - for standard input) instead of a live namespace.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor export" conntrack-file' -l 'conntrack-file' -d 'The conntrack table as copied from elsewhere: conntrack -L (any -o), -o xml, /proc/net/nf_conntrack, or ctdoctor JSON. With --sockets-file.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor export" sockets-file' -l 'sockets-file' -d 'The TCP sockets as copied from elsewhere: /proc/net/tcp{,6}, ss -tanpoi (or -tan, -naoep), or ctdoctor JSON. With --conntrack-file.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor export" all-netns' -l 'all-netns' -d 'Diagnose every network namespace on the node (each process\'s, and those under /var/run/netns), named by their pods where the processes\' files tell.'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor export" pod' -l 'pod' -d 'Diagnose the namespace of this pod only: NAME or NAMESPACE/NAME as the container runtime, HOSTNAME or /etc/hostname name it, or an ip netns name.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor export" parallel' -l 'parallel' -d 'With --all-netns: how many namespaces to diagnose at once.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor export" format' -l 'format' -d 'prometheus (text exposition) or json (ctdoctor.export.v1).' -rfka 'prometheus json'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor export" output' -l 'output' -d 'Write here, atomically, instead of standard output.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor export" every' -l 'every' -d 'Stay up and export again at this interval (e.g. 5m, 300s); needs --output.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor export" sidecar' -l 'sidecar' -d 'The sidecar: istio, asm, ambient (ztunnel), linkerd, or ports:OUT,IN. Default: detected from the listening sockets and their process.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor export" idle-timeout' -l 'idle-timeout' -d 'The proxy\'s TCP idle timeout (1h, 90s, 0 for disabled). Default: ISTIO_META_IDLE_TIMEOUT from the proxy\'s environment, else Envoy\'s 1h.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor export" connect-rate' -l 'connect-rate' -d 'Captured connects per second, for the collision model. Default: estimated from Tcp ActiveOpens over the proxy\'s uptime.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor export" stall-after' -l 'stall-after' -d 'An accepted connection silent both ways this long is stalled (5s, 30s…). Default: 5s (2s in the server-first lab).' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor export"' -l 'server-first' -d 'Also treat this port as serving a server-first protocol, optionally named; repeat for several.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor export" fail-on' -l 'fail-on' -d 'Exit 1 when a finding is at least this severe: info, warning, error or never.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor export" version' -l 'version' -d 'Show the version.'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor export" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_positional "ctdoctor lab" -eq 1' -fka 'half-close ambient collision collision-rate inbound-collision server-first pressure'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor lab" format' -l 'format' -d 'Output format: an aligned table for people, one JSON document, or one JSON object per line.' -rfka 'table json ndjson'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor lab" close-wait' -l 'close-wait' -d 'nf_conntrack_tcp_timeout_close_wait inside the lab, seconds (the kernel default is 60).' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor lab" keep' -l 'keep' -d 'Keep the namespace and its sockets until Enter is pressed, for exploring with --netns.'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor lab" emulate-old-kernel' -l 'emulate-old-kernel' -d 'collision: drop the app\'s RST before conntrack, as a kernel without the v6.2 fix would.'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor lab" connect-timeout' -l 'connect-timeout' -d 'collision: seconds before the colliding connect() gives up.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor lab" mesh' -l 'mesh' -d 'server-first: whose protocol detection the lab\'s proxy imitates (istio or linkerd).' -rfka 'istio linkerd'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor lab" leaks' -l 'leaks' -d 'collision-rate: leaked sockets to make.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor lab" connects' -l 'connects' -d 'collision-rate: captured connects per destination pattern.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor lab" sidecar' -l 'sidecar' -d 'The sidecar: istio, asm, ambient (ztunnel), linkerd, or ports:OUT,IN. Default: detected from the listening sockets and their process.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor lab" idle-timeout' -l 'idle-timeout' -d 'The proxy\'s TCP idle timeout (1h, 90s, 0 for disabled). Default: ISTIO_META_IDLE_TIMEOUT from the proxy\'s environment, else Envoy\'s 1h.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor lab" connect-rate' -l 'connect-rate' -d 'Captured connects per second, for the collision model. Default: estimated from Tcp ActiveOpens over the proxy\'s uptime.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor lab" stall-after' -l 'stall-after' -d 'An accepted connection silent both ways this long is stalled (5s, 30s…). Default: 5s (2s in the server-first lab).' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor lab"' -l 'server-first' -d 'Also treat this port as serving a server-first protocol, optionally named; repeat for several.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor lab" fail-on' -l 'fail-on' -d 'Exit 1 when a finding is at least this severe: info, warning, error or never.' -rfka ''
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor lab" version' -l 'version' -d 'Show the version.'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor lab" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'ctdoctor' -n '__ctdoctor_should_offer_completions_for_flags_or_options "ctdoctor help" version' -l 'version' -d 'Show the version.'
