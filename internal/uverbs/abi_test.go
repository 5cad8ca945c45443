package uverbs

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

// abiStructs pairs each Go struct with its C struct and the C names of its
// fields, in order (Go's "_" fields are skipped).
var abiStructs = []struct {
	c      string
	v      any
	fields string
}{
	{"struct ib_uverbs_ioctl_hdr", IoctlHdr{}, "length object_id method_id num_attrs reserved1 driver_id reserved2"},
	{"struct ib_uverbs_attr", Attr{}, "attr_id len flags attr_data data"},
	{"struct ib_uverbs_cmd_hdr", CmdHdr{}, "command in_words out_words"},
	{"struct ib_uverbs_get_context", GetContext{}, "response"},
	{"struct ib_uverbs_get_context_resp", GetContextResp{}, "async_fd num_comp_vectors"},
	{"struct ib_uverbs_query_device", QueryDevice{}, "response"},
	{"struct ib_uverbs_query_device_resp", QueryDeviceResp{}, "fw_ver node_guid sys_image_guid max_mr_size page_size_cap vendor_id vendor_part_id hw_ver max_qp max_qp_wr device_cap_flags max_sge max_sge_rd max_cq max_cqe max_mr max_pd max_qp_rd_atom max_ee_rd_atom max_res_rd_atom max_qp_init_rd_atom max_ee_init_rd_atom atomic_cap max_ee max_rdd max_mw max_raw_ipv6_qp max_raw_ethy_qp max_mcast_grp max_mcast_qp_attach max_total_mcast_qp_attach max_ah max_fmr max_map_per_fmr max_srq max_srq_wr max_srq_sge max_pkeys local_ca_ack_delay phys_port_cnt reserved"},
	{"struct ib_uverbs_query_port", QueryPort{}, "response port_num reserved"},
	{"struct ib_uverbs_query_port_resp", QueryPortResp{}, "port_cap_flags max_msg_sz bad_pkey_cntr qkey_viol_cntr gid_tbl_len pkey_tbl_len lid sm_lid state max_mtu active_mtu lmc max_vl_num sm_sl subnet_timeout init_type_reply active_width active_speed phys_state link_layer flags reserved"},
	{"struct ib_uverbs_query_port_resp_ex", QueryPortRespEx{}, "legacy_resp port_cap_flags2 reserved"},
	{"struct ib_uverbs_gid_entry", GIDEntry{}, "gid gid_index port_num gid_type netdev_ifindex"},
	{"struct ib_uverbs_alloc_pd", AllocPD{}, "response"},
	{"struct ib_uverbs_alloc_pd_resp", AllocPDResp{}, "pd_handle"},
	{"struct ib_uverbs_dealloc_pd", DeallocPD{}, "pd_handle"},
	{"struct ib_uverbs_reg_mr", RegMR{}, "response start length hca_va pd_handle access_flags"},
	{"struct ib_uverbs_reg_mr_resp", RegMRResp{}, "mr_handle lkey rkey"},
	{"struct ib_uverbs_dereg_mr", DeregMR{}, "mr_handle"},
	{"struct ib_uverbs_create_comp_channel", CreateCompChannel{}, "response"},
	{"struct ib_uverbs_create_comp_channel_resp", CreateCompChannelResp{}, "fd"},
	{"struct ib_uverbs_comp_event_desc", CompEventDesc{}, "cq_handle"},
	{"struct ib_uverbs_req_notify_cq", ReqNotifyCQ{}, "cq_handle solicited_only"},
	{"struct ib_uverbs_create_cq", CreateCQ{}, "response user_handle cqe comp_vector comp_channel reserved"},
	{"struct ib_uverbs_create_cq_resp", CreateCQResp{}, "cq_handle cqe"},
	{"struct ib_uverbs_destroy_cq", DestroyCQ{}, "response cq_handle reserved"},
	{"struct ib_uverbs_destroy_cq_resp", DestroyCQResp{}, "comp_events_reported async_events_reported"},
	{"struct ib_uverbs_create_qp", CreateQP{}, "response user_handle pd_handle send_cq_handle recv_cq_handle srq_handle max_send_wr max_recv_wr max_send_sge max_recv_sge max_inline_data sq_sig_all qp_type is_srq reserved"},
	{"struct ib_uverbs_create_qp_resp", CreateQPResp{}, "qp_handle qpn max_send_wr max_recv_wr max_send_sge max_recv_sge max_inline_data reserved"},
	{"struct ib_uverbs_qp_dest", QPDest{}, "dgid flow_label dlid reserved sgid_index hop_limit traffic_class sl src_path_bits static_rate is_global port_num"},
	{"struct ib_uverbs_modify_qp", ModifyQP{}, "dest alt_dest qp_handle attr_mask qkey rq_psn sq_psn dest_qp_num qp_access_flags pkey_index alt_pkey_index qp_state cur_qp_state path_mtu path_mig_state en_sqd_async_notify max_rd_atomic max_dest_rd_atomic min_rnr_timer port_num timeout retry_cnt rnr_retry alt_port_num alt_timeout reserved"},
	{"struct ib_uverbs_destroy_qp", DestroyQP{}, "response qp_handle reserved"},
	{"struct ib_uverbs_destroy_qp_resp", DestroyQPResp{}, "events_reported"},
	{"struct ib_uverbs_post_send", PostSend{}, "response qp_handle wr_count sge_count wqe_size"},
	{"struct ib_uverbs_post_send_resp", PostSendResp{}, "bad_wr"},
	{"struct ib_uverbs_wc", WC{}, "wr_id status opcode vendor_err byte_len ex qp_num src_qp wc_flags pkey_index slid sl dlid_path_bits port_num reserved"},
	{"struct mminfo", MMInfo{}, "offset size pad"},
	{"struct ib_uverbs_qp_cap", QPCap{}, "max_send_wr max_recv_wr max_send_sge max_recv_sge max_inline_data"},
	{"struct rxe_create_cq_resp", RxeCreateCQResp{}, "mi"},
	{"struct rxe_create_qp_resp", RxeCreateQPResp{}, "rq_mi sq_mi"},
	{"struct rxe_sge", RxeSGE{}, "addr length lkey"},
	{"struct rxe_send_wr", RxeSendWR{}, "wr_id reserved opcode send_flags ex wr"},
	{"struct rxe_dma_info", RxeDMAInfo{}, "length resid cur_sge num_sge sge_offset reserved"},
	{"struct rxe_send_wqe", RxeSendWQE{}, "wr status state iova mask first_psn last_psn ack_length ssn has_rd_atomic dma"},
	{"struct rxe_recv_wqe", RxeRecvWQE{}, "wr_id reserved padding dma"},
}

// abiConsts are the constants checked against the headers. Those from
// infiniband/verbs.h (libibverbs-dev) are checked only when it is installed.
var abiConsts = []struct {
	c   string
	v   int64
	ibv bool
}{
	{"RDMA_VERBS_IOCTL", RDMA_VERBS_IOCTL, false},
	{"IB_USER_VERBS_CMD_GET_CONTEXT", IB_USER_VERBS_CMD_GET_CONTEXT, false},
	{"IB_USER_VERBS_CMD_QUERY_DEVICE", IB_USER_VERBS_CMD_QUERY_DEVICE, false},
	{"IB_USER_VERBS_CMD_QUERY_PORT", IB_USER_VERBS_CMD_QUERY_PORT, false},
	{"IB_USER_VERBS_CMD_ALLOC_PD", IB_USER_VERBS_CMD_ALLOC_PD, false},
	{"IB_USER_VERBS_CMD_DEALLOC_PD", IB_USER_VERBS_CMD_DEALLOC_PD, false},
	{"IB_USER_VERBS_CMD_REG_MR", IB_USER_VERBS_CMD_REG_MR, false},
	{"IB_USER_VERBS_CMD_DEREG_MR", IB_USER_VERBS_CMD_DEREG_MR, false},
	{"IB_USER_VERBS_CMD_CREATE_COMP_CHANNEL", IB_USER_VERBS_CMD_CREATE_COMP_CHANNEL, false},
	{"IB_USER_VERBS_CMD_CREATE_CQ", IB_USER_VERBS_CMD_CREATE_CQ, false},
	{"IB_USER_VERBS_CMD_DESTROY_CQ", IB_USER_VERBS_CMD_DESTROY_CQ, false},
	{"IB_USER_VERBS_CMD_REQ_NOTIFY_CQ", IB_USER_VERBS_CMD_REQ_NOTIFY_CQ, false},
	{"IB_USER_VERBS_CMD_CREATE_QP", IB_USER_VERBS_CMD_CREATE_QP, false},
	{"IB_USER_VERBS_CMD_QUERY_QP", IB_USER_VERBS_CMD_QUERY_QP, false},
	{"IB_USER_VERBS_CMD_MODIFY_QP", IB_USER_VERBS_CMD_MODIFY_QP, false},
	{"IB_USER_VERBS_CMD_DESTROY_QP", IB_USER_VERBS_CMD_DESTROY_QP, false},
	{"IB_USER_VERBS_CMD_POST_SEND", IB_USER_VERBS_CMD_POST_SEND, false},
	{"UVERBS_OBJECT_DEVICE", UVERBS_OBJECT_DEVICE, false},
	{"UVERBS_OBJECT_CQ", UVERBS_OBJECT_CQ, false},
	{"UVERBS_OBJECT_QP", UVERBS_OBJECT_QP, false},
	{"UVERBS_METHOD_CQ_CREATE", UVERBS_METHOD_CQ_CREATE, false},
	{"UVERBS_METHOD_QP_CREATE", UVERBS_METHOD_QP_CREATE, false},
	{"UVERBS_ATTR_CREATE_CQ_HANDLE", UVERBS_ATTR_CREATE_CQ_HANDLE, false},
	{"UVERBS_ATTR_CREATE_CQ_CQE", UVERBS_ATTR_CREATE_CQ_CQE, false},
	{"UVERBS_ATTR_CREATE_CQ_USER_HANDLE", UVERBS_ATTR_CREATE_CQ_USER_HANDLE, false},
	{"UVERBS_ATTR_CREATE_CQ_COMP_CHANNEL", UVERBS_ATTR_CREATE_CQ_COMP_CHANNEL, false},
	{"UVERBS_ATTR_CREATE_CQ_COMP_VECTOR", UVERBS_ATTR_CREATE_CQ_COMP_VECTOR, false},
	{"UVERBS_ATTR_CREATE_CQ_RESP_CQE", UVERBS_ATTR_CREATE_CQ_RESP_CQE, false},
	{"UVERBS_ATTR_CREATE_QP_HANDLE", UVERBS_ATTR_CREATE_QP_HANDLE, false},
	{"UVERBS_ATTR_CREATE_QP_PD_HANDLE", UVERBS_ATTR_CREATE_QP_PD_HANDLE, false},
	{"UVERBS_ATTR_CREATE_QP_SEND_CQ_HANDLE", UVERBS_ATTR_CREATE_QP_SEND_CQ_HANDLE, false},
	{"UVERBS_ATTR_CREATE_QP_RECV_CQ_HANDLE", UVERBS_ATTR_CREATE_QP_RECV_CQ_HANDLE, false},
	{"UVERBS_ATTR_CREATE_QP_USER_HANDLE", UVERBS_ATTR_CREATE_QP_USER_HANDLE, false},
	{"UVERBS_ATTR_CREATE_QP_CAP", UVERBS_ATTR_CREATE_QP_CAP, false},
	{"UVERBS_ATTR_CREATE_QP_TYPE", UVERBS_ATTR_CREATE_QP_TYPE, false},
	{"UVERBS_ATTR_CREATE_QP_FLAGS", UVERBS_ATTR_CREATE_QP_FLAGS, false},
	{"UVERBS_ATTR_CREATE_QP_RESP_CAP", UVERBS_ATTR_CREATE_QP_RESP_CAP, false},
	{"UVERBS_ATTR_CREATE_QP_RESP_QP_NUM", UVERBS_ATTR_CREATE_QP_RESP_QP_NUM, false},
	{"IB_UVERBS_QP_CREATE_SQ_SIG_ALL", IB_UVERBS_QP_CREATE_SQ_SIG_ALL, false},
	{"UVERBS_METHOD_INVOKE_WRITE", UVERBS_METHOD_INVOKE_WRITE, false},
	{"UVERBS_METHOD_QUERY_PORT", UVERBS_METHOD_QUERY_PORT, false},
	{"UVERBS_METHOD_QUERY_GID_ENTRY", UVERBS_METHOD_QUERY_GID_ENTRY, false},
	{"UVERBS_ATTR_CORE_IN", UVERBS_ATTR_CORE_IN, false},
	{"UVERBS_ATTR_CORE_OUT", UVERBS_ATTR_CORE_OUT, false},
	{"UVERBS_ATTR_WRITE_CMD", UVERBS_ATTR_WRITE_CMD, false},
	{"UVERBS_ATTR_QUERY_PORT_PORT_NUM", UVERBS_ATTR_QUERY_PORT_PORT_NUM, false},
	{"UVERBS_ATTR_QUERY_PORT_RESP", UVERBS_ATTR_QUERY_PORT_RESP, false},
	{"UVERBS_ATTR_QUERY_GID_ENTRY_PORT", UVERBS_ATTR_QUERY_GID_ENTRY_PORT, false},
	{"UVERBS_ATTR_QUERY_GID_ENTRY_GID_INDEX", UVERBS_ATTR_QUERY_GID_ENTRY_GID_INDEX, false},
	{"UVERBS_ATTR_QUERY_GID_ENTRY_FLAGS", UVERBS_ATTR_QUERY_GID_ENTRY_FLAGS, false},
	{"UVERBS_ATTR_QUERY_GID_ENTRY_RESP_ENTRY", UVERBS_ATTR_QUERY_GID_ENTRY_RESP_ENTRY, false},
	{"UVERBS_ATTR_UHW_IN", UVERBS_ATTR_UHW_IN, false},
	{"UVERBS_ATTR_UHW_OUT", UVERBS_ATTR_UHW_OUT, false},
	{"UVERBS_ATTR_F_MANDATORY", UVERBS_ATTR_F_MANDATORY, false},
	{"UVERBS_ATTR_F_VALID_OUTPUT", UVERBS_ATTR_F_VALID_OUTPUT, false},
	{"RDMA_DRIVER_RXE", RDMA_DRIVER_RXE, false},
	{"IB_UVERBS_ACCESS_LOCAL_WRITE", IB_UVERBS_ACCESS_LOCAL_WRITE, false},
	{"IB_UVERBS_ACCESS_REMOTE_WRITE", IB_UVERBS_ACCESS_REMOTE_WRITE, false},
	{"IB_UVERBS_ACCESS_REMOTE_READ", IB_UVERBS_ACCESS_REMOTE_READ, false},
	{"IB_UVERBS_ACCESS_REMOTE_ATOMIC", IB_UVERBS_ACCESS_REMOTE_ATOMIC, false},
	{"IB_UVERBS_QPT_RC", IB_UVERBS_QPT_RC, false},
	{"IB_UVERBS_QPT_UD", IB_UVERBS_QPT_UD, false},
	{"IB_UVERBS_WR_RDMA_WRITE", IB_UVERBS_WR_RDMA_WRITE, false},
	{"IB_UVERBS_WR_RDMA_WRITE_WITH_IMM", IB_UVERBS_WR_RDMA_WRITE_WITH_IMM, false},
	{"IB_UVERBS_WR_SEND", IB_UVERBS_WR_SEND, false},
	{"IB_UVERBS_WR_SEND_WITH_IMM", IB_UVERBS_WR_SEND_WITH_IMM, false},
	{"IB_UVERBS_WR_RDMA_READ", IB_UVERBS_WR_RDMA_READ, false},
	{"IB_UVERBS_WR_ATOMIC_CMP_AND_SWP", IB_UVERBS_WR_ATOMIC_CMP_AND_SWP, false},
	{"IB_UVERBS_WR_ATOMIC_FETCH_AND_ADD", IB_UVERBS_WR_ATOMIC_FETCH_AND_ADD, false},
	{"IBV_SEND_FENCE", IBV_SEND_FENCE, true},
	{"IBV_SEND_SIGNALED", IBV_SEND_SIGNALED, true},
	{"IBV_SEND_SOLICITED", IBV_SEND_SOLICITED, true},
	{"IBV_SEND_INLINE", IBV_SEND_INLINE, true},
	{"IB_UVERBS_GID_TYPE_IB", IB_UVERBS_GID_TYPE_IB, false},
	{"IB_UVERBS_GID_TYPE_ROCE_V1", IB_UVERBS_GID_TYPE_ROCE_V1, false},
	{"IB_UVERBS_GID_TYPE_ROCE_V2", IB_UVERBS_GID_TYPE_ROCE_V2, false},
	{"sizeof(struct ib_uverbs_send_wr)", PostSendWQESize, false},
	{"offsetof(struct rxe_send_wr, wr.rdma.remote_addr)", RxeWRRemoteAddrOffset + 24, false},
	{"offsetof(struct rxe_send_wr, wr.rdma.rkey)", RxeWRRDMARKeyOffset + 24, false},
	{"offsetof(struct rxe_send_wr, wr.atomic.compare_add)", RxeWRCompareAddOffset + 24, false},
	{"offsetof(struct rxe_send_wr, wr.atomic.swap)", RxeWRSwapOffset + 24, false},
	{"offsetof(struct rxe_send_wr, wr.atomic.rkey)", RxeWRAtomicRKeyOffset + 24, false},
	{"offsetof(struct rxe_send_wr, wr)", 24, false},
	{"offsetof(struct rxe_queue_buf, log2_elem_size)", RxeQueueLog2ElemSizeOffset, false},
	{"offsetof(struct rxe_queue_buf, index_mask)", RxeQueueIndexMaskOffset, false},
	{"offsetof(struct rxe_queue_buf, producer_index)", RxeQueueProducerOffset, false},
	{"offsetof(struct rxe_queue_buf, consumer_index)", RxeQueueConsumerOffset, false},
	{"offsetof(struct rxe_queue_buf, data)", RxeQueueDataOffset, false},
	{"offsetof(struct rxe_dma_info, sge)", int64(unsafe.Sizeof(RxeDMAInfo{})), false},
	{"sizeof(struct ibv_sge)", int64(unsafe.Sizeof(RxeSGE{})), true},
	{"IBV_QP_STATE", IBV_QP_STATE, true},
	{"IBV_QP_CUR_STATE", IBV_QP_CUR_STATE, true},
	{"IBV_QP_EN_SQD_ASYNC_NOTIFY", IBV_QP_EN_SQD_ASYNC_NOTIFY, true},
	{"IBV_QP_ACCESS_FLAGS", IBV_QP_ACCESS_FLAGS, true},
	{"IBV_QP_PKEY_INDEX", IBV_QP_PKEY_INDEX, true},
	{"IBV_QP_PORT", IBV_QP_PORT, true},
	{"IBV_QP_QKEY", IBV_QP_QKEY, true},
	{"IBV_QP_AV", IBV_QP_AV, true},
	{"IBV_QP_PATH_MTU", IBV_QP_PATH_MTU, true},
	{"IBV_QP_TIMEOUT", IBV_QP_TIMEOUT, true},
	{"IBV_QP_RETRY_CNT", IBV_QP_RETRY_CNT, true},
	{"IBV_QP_RNR_RETRY", IBV_QP_RNR_RETRY, true},
	{"IBV_QP_RQ_PSN", IBV_QP_RQ_PSN, true},
	{"IBV_QP_MAX_QP_RD_ATOMIC", IBV_QP_MAX_QP_RD_ATOMIC, true},
	{"IBV_QP_ALT_PATH", IBV_QP_ALT_PATH, true},
	{"IBV_QP_MIN_RNR_TIMER", IBV_QP_MIN_RNR_TIMER, true},
	{"IBV_QP_SQ_PSN", IBV_QP_SQ_PSN, true},
	{"IBV_QP_MAX_DEST_RD_ATOMIC", IBV_QP_MAX_DEST_RD_ATOMIC, true},
	{"IBV_QP_PATH_MIG_STATE", IBV_QP_PATH_MIG_STATE, true},
	{"IBV_QP_CAP", IBV_QP_CAP, true},
	{"IBV_QP_DEST_QPN", IBV_QP_DEST_QPN, true},
	{"IBV_WC_SEND", IBV_WC_SEND, true},
	{"IBV_WC_RDMA_WRITE", IBV_WC_RDMA_WRITE, true},
	{"IBV_WC_RDMA_READ", IBV_WC_RDMA_READ, true},
	{"IBV_WC_COMP_SWAP", IBV_WC_COMP_SWAP, true},
	{"IBV_WC_FETCH_ADD", IBV_WC_FETCH_ADD, true},
	{"IBV_WC_RECV", IBV_WC_RECV, true},
	{"IBV_WC_RECV_RDMA_WITH_IMM", IBV_WC_RECV_RDMA_WITH_IMM, true},
}

// TestABIAgainstHeaders compiles a C program over the installed UAPI headers
// (linux-libc-dev; libibverbs-dev for the IBV_* names) and compares every
// size, offset and constant above with the Go side.
func TestABIAgainstHeaders(t *testing.T) {
	cc := os.Getenv("CC")
	if cc == "" {
		for _, c := range []string{"cc", "gcc", "clang"} {
			if p, err := exec.LookPath(c); err == nil {
				cc = p
				break
			}
		}
	}
	if cc == "" {
		t.Skip("no C compiler to read the UAPI headers with (make deps installs gcc)")
	}
	if _, err := os.Stat("/usr/include/rdma/rdma_user_rxe.h"); err != nil {
		t.Skip("no /usr/include/rdma headers (apt-get install linux-libc-dev)")
	}
	_, ibvErr := os.Stat("/usr/include/infiniband/verbs.h")
	haveIBV := ibvErr == nil

	want := map[string]int64{}
	var src bytes.Buffer
	src.WriteString("#include <stdio.h>\n#include <stddef.h>\n#include <rdma/ib_user_verbs.h>\n" +
		"#include <rdma/ib_user_ioctl_cmds.h>\n#include <rdma/ib_user_ioctl_verbs.h>\n" +
		"#include <rdma/rdma_user_ioctl_cmds.h>\n#include <rdma/rdma_user_rxe.h>\n")
	if haveIBV {
		src.WriteString("#include <infiniband/verbs.h>\n")
	}
	src.WriteString("int main(void) {\n")
	emit := func(key, expr string, v int64) {
		want[key] = v
		fmt.Fprintf(&src, "\tprintf(\"%%s %%lld\\n\", %q, (long long)(%s));\n", key, expr)
	}
	for _, s := range abiStructs {
		typ := reflect.TypeOf(s.v)
		emit("sizeof "+s.c, "sizeof("+s.c+")", int64(typ.Size()))
		names := strings.Fields(s.fields)
		var goFields []reflect.StructField
		for i := range typ.NumField() {
			if f := typ.Field(i); f.Name != "_" {
				goFields = append(goFields, f)
			}
		}
		if len(names) != len(goFields) {
			t.Fatalf("%s: %d C field names for %d Go fields", s.c, len(names), len(goFields))
		}
		for i, f := range goFields {
			cf := names[i]
			emit(s.c+"."+cf, "offsetof("+s.c+", "+cf+")", int64(f.Offset))
			emit(s.c+"."+cf+" size", "sizeof(((("+s.c+" *)0)->"+cf+"))", int64(f.Type.Size()))
		}
	}
	for _, c := range abiConsts {
		if c.ibv && !haveIBV {
			continue
		}
		emit(c.c, c.c, c.v)
	}
	src.WriteString("\treturn 0;\n}\n")

	dir := t.TempDir()
	cfile, bin := filepath.Join(dir, "abi.c"), filepath.Join(dir, "abi")
	if err := os.WriteFile(cfile, src.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(cc, "-o", bin, cfile).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cc, err, out)
	}
	out, err := exec.Command(bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		i := strings.LastIndexByte(line, ' ')
		key := line[:i]
		got, err := strconv.ParseInt(line[i+1:], 10, 64)
		if err != nil {
			t.Fatal(line)
		}
		seen++
		if w := want[key]; w != got {
			t.Errorf("%s: header says %d, Go has %d", key, got, w)
		}
	}
	if seen != len(want) {
		t.Errorf("checked %d of %d values", seen, len(want))
	}
	if !haveIBV {
		t.Log("infiniband/verbs.h missing: IBV_* constants not checked (apt-get install libibverbs-dev)")
	}
}

func TestDoorbellLayout(t *testing.T) {
	// write() sends header + request as one buffer: 8 + 24 bytes, no padding.
	if n := unsafe.Sizeof(doorbellWrite{}); n != unsafe.Sizeof(CmdHdr{})+unsafe.Sizeof(PostSend{}) || n%4 != 0 {
		t.Fatalf("doorbell write buffer is %d bytes", n)
	}
	if off := unsafe.Offsetof(doorbellWrite{}.req); off != unsafe.Sizeof(CmdHdr{}) {
		t.Fatalf("request at %d", off)
	}
	var s scratch
	if uintptr(unsafe.Pointer(&s.resp[0]))%8 != 0 || uintptr(unsafe.Pointer(&s.out[0]))%8 != 0 || uintptr(unsafe.Pointer(&s.wr[8]))%8 != 0 {
		t.Fatal("scratch buffers are not 8-byte aligned")
	}
	// REQ_NOTIFY_CQ: header + 8-byte request; ioctl header + two attributes.
	if n := unsafe.Sizeof(notifyWrite{}); n != unsafe.Sizeof(CmdHdr{})+unsafe.Sizeof(ReqNotifyCQ{}) || n%4 != 0 {
		t.Fatalf("notify write buffer is %d bytes", n)
	}
	if n := unsafe.Sizeof(notifyIoctl{}); n != unsafe.Sizeof(IoctlHdr{})+2*unsafe.Sizeof(Attr{}) {
		t.Fatalf("notify ioctl buffer is %d bytes", n)
	}
}
