// SPDX-License-Identifier: MIT
// Layout probe for the structs shared by redirect_win.bpf.c and native/src/windows.
// scripts/ci.d/20-windows-cross.sh compiles this file for the BPF target and for x64 Windows
// (clang's MSVC ABI and mingw-w64) and compares the gpa_layout arrays: any difference in a size
// or offset between kernel and user space fails the check. Never linked or run.
#include <stddef.h>
#include <stdint.h>

#include "efw_minimal.h"
#include "redirect_win.h"

#define F(type, field) offsetof(type, field), sizeof(((type *)0)->field)

const unsigned long long gpa_layout[] = {
    sizeof(struct gpa_win_rule_key),
    F(struct gpa_win_rule_key, addr),
    F(struct gpa_win_rule_key, port),
    F(struct gpa_win_rule_key, pad),
    sizeof(struct gpa_win_rule_value),
    F(struct gpa_win_rule_value, addr),
    F(struct gpa_win_rule_value, port),
    sizeof(struct gpa_win_conn_key),
    F(struct gpa_win_conn_key, protocol),
    F(struct gpa_win_conn_key, source_port),
    sizeof(struct gpa_win_conn_record),
    F(struct gpa_win_conn_record, magic),
    F(struct gpa_win_conn_record, pid),
    F(struct gpa_win_conn_record, tid),
    F(struct gpa_win_conn_record, orig_addr),
    F(struct gpa_win_conn_record, logon_id),
    F(struct gpa_win_conn_record, orig_port),
    F(struct gpa_win_conn_record, is_admin),
    F(struct gpa_win_conn_record, flags),
    F(struct gpa_win_conn_record, reserved),
    // The context as the program sees it vs. as eBPF-for-Windows (MSVC x64) defines it.
    sizeof(bpf_sock_addr_t),
    F(bpf_sock_addr_t, family),
    F(bpf_sock_addr_t, msg_src_ip4),
    F(bpf_sock_addr_t, msg_src_port),
    F(bpf_sock_addr_t, user_ip4),
    F(bpf_sock_addr_t, user_port),
    F(bpf_sock_addr_t, protocol),
    F(bpf_sock_addr_t, compartment_id),
    F(bpf_sock_addr_t, interface_luid),
};
