// What each errno a failed socket() call returns means, and what usually causes it.

const ERRNOS = {
  EMFILE: ["The process has reached its limit of open file descriptors (RLIMIT_NOFILE).",
    "A descriptor leak (sockets or files never closed), a connection pool or fan-out larger than the soft limit, or a limit left at the default 1024."],
  ENFILE: ["The whole system has reached its limit of open files (fs.file-max).",
    "Many processes together hold too many descriptors, or fs.file-max is set too low for the node."],
  EAFNOSUPPORT: ["The address family is not supported by this kernel or in this namespace.",
    "IPv6 disabled on the node, a kernel built without the family (e.g. AF_VSOCK), or a probe for an optional family."],
  EPROTONOSUPPORT: ["The protocol is not supported within this address family.",
    "A module not loaded (e.g. SCTP), or a wrong protocol number for the family and type."],
  ESOCKTNOSUPPORT: ["The socket type is not supported in this address family.",
    "An unusual type for the family, or a kernel built without it."],
  EPROTOTYPE: ["The protocol does not fit the socket type.",
    "A protocol given with the wrong type, e.g. IPPROTO_UDP with SOCK_STREAM."],
  EINVAL: ["An argument is invalid: unknown family, type or flags.",
    "A wrong constant passed by the program, or flags (SOCK_NONBLOCK, SOCK_CLOEXEC) the kernel does not know."],
  EACCES: ["Permission denied to create this kind of socket.",
    "A raw or packet socket without CAP_NET_RAW, or an LSM (SELinux, AppArmor) or seccomp rule refusing it."],
  EPERM: ["The operation is not permitted.",
    "A seccomp filter or LSM denying socket(), or a missing capability in a container."],
  ENOBUFS: ["Not enough buffer space or kernel memory to create the socket.",
    "Kernel memory pressure, or socket memory limits (net.core.*mem) exhausted."],
  ENOMEM: ["The kernel could not allocate memory for the socket.",
    "Memory pressure on the node or a cgroup memory limit reached."],
  ENOSYS: ["socket() is not implemented here.",
    "A seccomp profile returning ENOSYS, or an emulation layer without the call."],
  EOPNOTSUPP: ["The operation is not supported on this socket.",
    "A feature the kernel or the family lacks."],
};

/** {meaning, causes} of an errno name, or null when unknown here. */
export function explain(name) {
  const entry = ERRNOS[name];
  return entry ? { meaning: entry[0], causes: entry[1] } : null;
}
