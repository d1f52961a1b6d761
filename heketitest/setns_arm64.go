package heketitest

// sysSetns is setns(2)'s system call number (the syscall package lacks it).
const sysSetns = 268
