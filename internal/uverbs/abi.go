package uverbs

import "structs"

// RDMA_VERBS_IOCTL = _IOWR(RDMA_IOCTL_MAGIC 0x1b, 1, struct ib_uverbs_ioctl_hdr).
const RDMA_VERBS_IOCTL = 0xc0181b01

// enum ib_uverbs_write_cmds (rdma/ib_user_verbs.h).
const (
	IB_USER_VERBS_CMD_GET_CONTEXT         = 0
	IB_USER_VERBS_CMD_QUERY_DEVICE        = 1
	IB_USER_VERBS_CMD_QUERY_PORT          = 2
	IB_USER_VERBS_CMD_ALLOC_PD            = 3
	IB_USER_VERBS_CMD_DEALLOC_PD          = 4
	IB_USER_VERBS_CMD_REG_MR              = 9
	IB_USER_VERBS_CMD_DEREG_MR            = 13
	IB_USER_VERBS_CMD_CREATE_COMP_CHANNEL = 17
	IB_USER_VERBS_CMD_CREATE_CQ           = 18
	IB_USER_VERBS_CMD_DESTROY_CQ          = 20
	IB_USER_VERBS_CMD_REQ_NOTIFY_CQ       = 23
	IB_USER_VERBS_CMD_CREATE_QP           = 24
	IB_USER_VERBS_CMD_QUERY_QP            = 25
	IB_USER_VERBS_CMD_MODIFY_QP           = 26
	IB_USER_VERBS_CMD_DESTROY_QP          = 27
	IB_USER_VERBS_CMD_POST_SEND           = 28
)

// ioctl object, method and attribute ids (rdma/ib_user_ioctl_cmds.h) and
// attribute flags (rdma/rdma_user_ioctl_cmds.h).
const (
	UVERBS_OBJECT_DEVICE = 0
	UVERBS_OBJECT_CQ     = 3
	UVERBS_OBJECT_QP     = 4

	UVERBS_METHOD_CQ_CREATE = 0
	UVERBS_METHOD_QP_CREATE = 0

	UVERBS_ATTR_CREATE_CQ_HANDLE       = 0
	UVERBS_ATTR_CREATE_CQ_CQE          = 1
	UVERBS_ATTR_CREATE_CQ_USER_HANDLE  = 2
	UVERBS_ATTR_CREATE_CQ_COMP_CHANNEL = 3 // UVERBS_ATTR_FD: len 0, data = the channel's fd
	UVERBS_ATTR_CREATE_CQ_COMP_VECTOR  = 4
	UVERBS_ATTR_CREATE_CQ_RESP_CQE     = 6

	UVERBS_ATTR_CREATE_QP_HANDLE         = 0
	UVERBS_ATTR_CREATE_QP_PD_HANDLE      = 2
	UVERBS_ATTR_CREATE_QP_SEND_CQ_HANDLE = 4
	UVERBS_ATTR_CREATE_QP_RECV_CQ_HANDLE = 5
	UVERBS_ATTR_CREATE_QP_USER_HANDLE    = 7
	UVERBS_ATTR_CREATE_QP_CAP            = 8
	UVERBS_ATTR_CREATE_QP_TYPE           = 9
	UVERBS_ATTR_CREATE_QP_FLAGS          = 10
	UVERBS_ATTR_CREATE_QP_RESP_CAP       = 13
	UVERBS_ATTR_CREATE_QP_RESP_QP_NUM    = 14

	IB_UVERBS_QP_CREATE_SQ_SIG_ALL = 1 << 12

	UVERBS_METHOD_INVOKE_WRITE    = 0
	UVERBS_METHOD_QUERY_PORT      = 2
	UVERBS_METHOD_QUERY_GID_ENTRY = 6

	UVERBS_ATTR_CORE_IN   = 0
	UVERBS_ATTR_CORE_OUT  = 1
	UVERBS_ATTR_WRITE_CMD = 2

	UVERBS_ATTR_QUERY_PORT_PORT_NUM = 0
	UVERBS_ATTR_QUERY_PORT_RESP     = 1

	UVERBS_ATTR_QUERY_GID_ENTRY_PORT       = 0
	UVERBS_ATTR_QUERY_GID_ENTRY_GID_INDEX  = 1
	UVERBS_ATTR_QUERY_GID_ENTRY_FLAGS      = 2
	UVERBS_ATTR_QUERY_GID_ENTRY_RESP_ENTRY = 3

	UVERBS_ATTR_UHW_IN  = 0x1000
	UVERBS_ATTR_UHW_OUT = 0x1001

	UVERBS_ATTR_F_MANDATORY    = 1 << 0
	UVERBS_ATTR_F_VALID_OUTPUT = 1 << 1

	RDMA_DRIVER_RXE = 14
)

// Access flags (enum ib_uverbs_access_flags), QP types and states, work
// request opcodes (enum ib_uverbs_wr_opcode) and send flags (enum
// ib_uverbs_send_flags).
const (
	IB_UVERBS_ACCESS_LOCAL_WRITE   = 1 << 0
	IB_UVERBS_ACCESS_REMOTE_WRITE  = 1 << 1
	IB_UVERBS_ACCESS_REMOTE_READ   = 1 << 2
	IB_UVERBS_ACCESS_REMOTE_ATOMIC = 1 << 3

	IB_UVERBS_QPT_RC = 2
	IB_UVERBS_QPT_UD = 4

	IB_UVERBS_WR_RDMA_WRITE           = 0
	IB_UVERBS_WR_RDMA_WRITE_WITH_IMM  = 1
	IB_UVERBS_WR_SEND                 = 2
	IB_UVERBS_WR_SEND_WITH_IMM        = 3
	IB_UVERBS_WR_RDMA_READ            = 4
	IB_UVERBS_WR_ATOMIC_CMP_AND_SWP   = 5
	IB_UVERBS_WR_ATOMIC_FETCH_AND_ADD = 6
	IBV_SEND_FENCE                    = 1 << 0
	IBV_SEND_SIGNALED                 = 1 << 1
	IBV_SEND_SOLICITED                = 1 << 2
	IBV_SEND_INLINE                   = 1 << 3
)

// QP attribute mask bits (enum ibv_qp_attr_mask in infiniband/verbs.h, the
// same values as the kernel's enum ib_qp_attr_mask that MODIFY_QP takes).
const (
	IBV_QP_STATE               = 1 << 0
	IBV_QP_CUR_STATE           = 1 << 1
	IBV_QP_EN_SQD_ASYNC_NOTIFY = 1 << 2
	IBV_QP_ACCESS_FLAGS        = 1 << 3
	IBV_QP_PKEY_INDEX          = 1 << 4
	IBV_QP_PORT                = 1 << 5
	IBV_QP_QKEY                = 1 << 6
	IBV_QP_AV                  = 1 << 7
	IBV_QP_PATH_MTU            = 1 << 8
	IBV_QP_TIMEOUT             = 1 << 9
	IBV_QP_RETRY_CNT           = 1 << 10
	IBV_QP_RNR_RETRY           = 1 << 11
	IBV_QP_RQ_PSN              = 1 << 12
	IBV_QP_MAX_QP_RD_ATOMIC    = 1 << 13
	IBV_QP_ALT_PATH            = 1 << 14
	IBV_QP_MIN_RNR_TIMER       = 1 << 15
	IBV_QP_SQ_PSN              = 1 << 16
	IBV_QP_MAX_DEST_RD_ATOMIC  = 1 << 17
	IBV_QP_PATH_MIG_STATE      = 1 << 18
	IBV_QP_CAP                 = 1 << 19
	IBV_QP_DEST_QPN            = 1 << 20
)

// Work completion opcodes for receives (enum ibv_wc_opcode).
const (
	IBV_WC_SEND               = 0
	IBV_WC_RDMA_WRITE         = 1
	IBV_WC_RDMA_READ          = 2
	IBV_WC_COMP_SWAP          = 3
	IBV_WC_FETCH_ADD          = 4
	IBV_WC_RECV               = 128
	IBV_WC_RECV_RDMA_WITH_IMM = 129
)

// struct ib_uverbs_ioctl_hdr.
type IoctlHdr struct {
	_         structs.HostLayout
	Length    uint16
	ObjectID  uint16
	MethodID  uint16
	NumAttrs  uint16
	Reserved1 uint64
	DriverID  uint32
	Reserved2 uint32
}

// struct ib_uverbs_attr. Data is the value itself for inputs of at most 8
// bytes, else a user pointer.
type Attr struct {
	_        structs.HostLayout
	AttrID   uint16
	Len      uint16
	Flags    uint16
	AttrData uint16
	Data     uint64
}

// struct ib_uverbs_cmd_hdr: the write() framing. Sizes in 4-byte words,
// InWords including this header.
type CmdHdr struct {
	_        structs.HostLayout
	Command  uint32
	InWords  uint16
	OutWords uint16
}

type GetContext struct {
	_        structs.HostLayout
	Response uint64
}

type GetContextResp struct {
	_              structs.HostLayout
	AsyncFD        uint32
	NumCompVectors uint32
}

type QueryDevice struct {
	_        structs.HostLayout
	Response uint64
}

// struct ib_uverbs_query_device_resp.
type QueryDeviceResp struct {
	_                     structs.HostLayout
	FwVer                 uint64
	NodeGUID              uint64 // big endian
	SysImageGUID          uint64 // big endian
	MaxMRSize             uint64
	PageSizeCap           uint64
	VendorID              uint32
	VendorPartID          uint32
	HwVer                 uint32
	MaxQP                 uint32
	MaxQPWR               uint32
	DeviceCapFlags        uint32
	MaxSGE                uint32
	MaxSGERd              uint32
	MaxCQ                 uint32
	MaxCQE                uint32
	MaxMR                 uint32
	MaxPD                 uint32
	MaxQPRdAtom           uint32
	MaxEERdAtom           uint32
	MaxResRdAtom          uint32
	MaxQPInitRdAtom       uint32
	MaxEEInitRdAtom       uint32
	AtomicCap             uint32
	MaxEE                 uint32
	MaxRDD                uint32
	MaxMW                 uint32
	MaxRawIPv6QP          uint32
	MaxRawEthyQP          uint32
	MaxMcastGrp           uint32
	MaxMcastQPAttach      uint32
	MaxTotalMcastQPAttach uint32
	MaxAH                 uint32
	MaxFMR                uint32
	MaxMapPerFMR          uint32
	MaxSRQ                uint32
	MaxSRQWR              uint32
	MaxSRQSGE             uint32
	MaxPKeys              uint16
	LocalCAAckDelay       uint8
	PhysPortCnt           uint8
	Reserved              [4]uint8
}

type QueryPort struct {
	_        structs.HostLayout
	Response uint64
	PortNum  uint8
	Reserved [7]uint8
}

// struct ib_uverbs_query_port_resp.
type QueryPortResp struct {
	_             structs.HostLayout
	PortCapFlags  uint32
	MaxMsgSz      uint32
	BadPKeyCntr   uint32
	QKeyViolCntr  uint32
	GIDTblLen     uint32
	PKeyTblLen    uint16
	LID           uint16
	SMLID         uint16
	State         uint8
	MaxMTU        uint8
	ActiveMTU     uint8
	LMC           uint8
	MaxVLNum      uint8
	SMSL          uint8
	SubnetTimeout uint8
	InitTypeReply uint8
	ActiveWidth   uint8
	ActiveSpeed   uint8
	PhysState     uint8
	LinkLayer     uint8
	Flags         uint8
	Reserved      uint8
}

// struct ib_uverbs_query_port_resp_ex (UVERBS_METHOD_QUERY_PORT).
type QueryPortRespEx struct {
	_             structs.HostLayout
	Legacy        QueryPortResp
	PortCapFlags2 uint16
	Reserved      [6]uint8
}

// struct ib_uverbs_gid_entry (UVERBS_METHOD_QUERY_GID_ENTRY).
type GIDEntry struct {
	_             structs.HostLayout
	GID           [16]uint8
	GIDIndex      uint32
	PortNum       uint32
	GIDType       uint32
	NetdevIfindex uint32
}

// GID types (enum ib_uverbs_gid_type).
const (
	IB_UVERBS_GID_TYPE_IB      = 0
	IB_UVERBS_GID_TYPE_ROCE_V1 = 1
	IB_UVERBS_GID_TYPE_ROCE_V2 = 2
)

type AllocPD struct {
	_        structs.HostLayout
	Response uint64
}

type AllocPDResp struct {
	_        structs.HostLayout
	PDHandle uint32
}

type DeallocPD struct {
	_        structs.HostLayout
	PDHandle uint32
}

type RegMR struct {
	_           structs.HostLayout
	Response    uint64
	Start       uint64
	Length      uint64
	HCAVA       uint64
	PDHandle    uint32
	AccessFlags uint32
}

type RegMRResp struct {
	_        structs.HostLayout
	MRHandle uint32
	LKey     uint32
	RKey     uint32
}

type DeregMR struct {
	_        structs.HostLayout
	MRHandle uint32
}

// struct ib_uverbs_qp_cap (UVERBS_ATTR_CREATE_QP_CAP / _RESP_CAP).
type QPCap struct {
	_             structs.HostLayout
	MaxSendWR     uint32
	MaxRecvWR     uint32
	MaxSendSGE    uint32
	MaxRecvSGE    uint32
	MaxInlineData uint32
}

type CreateCompChannel struct {
	_        structs.HostLayout
	Response uint64
}

// struct ib_uverbs_create_comp_channel_resp: FD is a new descriptor in the
// calling process (O_RDONLY, O_CLOEXEC).
type CreateCompChannelResp struct {
	_  structs.HostLayout
	FD uint32
}

// struct ib_uverbs_comp_event_desc: what each read of a completion channel
// returns. CQHandle is the CQ's user_handle from CREATE_CQ, not the kernel
// handle.
type CompEventDesc struct {
	_        structs.HostLayout
	CQHandle uint64
}

type ReqNotifyCQ struct {
	_             structs.HostLayout
	CQHandle      uint32
	SolicitedOnly uint32
}

type CreateCQ struct {
	_           structs.HostLayout
	Response    uint64
	UserHandle  uint64
	CQE         uint32
	CompVector  uint32
	CompChannel int32
	Reserved    uint32
}

type CreateCQResp struct {
	_        structs.HostLayout
	CQHandle uint32
	CQE      uint32
}

type DestroyCQ struct {
	_        structs.HostLayout
	Response uint64
	CQHandle uint32
	Reserved uint32
}

type DestroyCQResp struct {
	_                   structs.HostLayout
	CompEventsReported  uint32
	AsyncEventsReported uint32
}

type CreateQP struct {
	_             structs.HostLayout
	Response      uint64
	UserHandle    uint64
	PDHandle      uint32
	SendCQHandle  uint32
	RecvCQHandle  uint32
	SRQHandle     uint32
	MaxSendWR     uint32
	MaxRecvWR     uint32
	MaxSendSGE    uint32
	MaxRecvSGE    uint32
	MaxInlineData uint32
	SQSigAll      uint8
	QPType        uint8
	IsSRQ         uint8
	Reserved      uint8
}

type CreateQPResp struct {
	_             structs.HostLayout
	QPHandle      uint32
	QPN           uint32
	MaxSendWR     uint32
	MaxRecvWR     uint32
	MaxSendSGE    uint32
	MaxRecvSGE    uint32
	MaxInlineData uint32
	Reserved      uint32
}

// struct ib_uverbs_qp_dest: the address vector of MODIFY_QP.
type QPDest struct {
	_            structs.HostLayout
	DGID         [16]uint8
	FlowLabel    uint32
	DLID         uint16
	Reserved     uint16
	SGIDIndex    uint8
	HopLimit     uint8
	TrafficClass uint8
	SL           uint8
	SrcPathBits  uint8
	StaticRate   uint8
	IsGlobal     uint8
	PortNum      uint8
}

type ModifyQP struct {
	_                structs.HostLayout
	Dest             QPDest
	AltDest          QPDest
	QPHandle         uint32
	AttrMask         uint32
	QKey             uint32
	RQPSN            uint32
	SQPSN            uint32
	DestQPNum        uint32
	QPAccessFlags    uint32
	PKeyIndex        uint16
	AltPKeyIndex     uint16
	QPState          uint8
	CurQPState       uint8
	PathMTU          uint8
	PathMigState     uint8
	EnSQDAsyncNotify uint8
	MaxRdAtomic      uint8
	MaxDestRdAtomic  uint8
	MinRNRTimer      uint8
	PortNum          uint8
	Timeout          uint8
	RetryCnt         uint8
	RNRRetry         uint8
	AltPortNum       uint8
	AltTimeout       uint8
	Reserved         [2]uint8
}

type DestroyQP struct {
	_        structs.HostLayout
	Response uint64
	QPHandle uint32
	Reserved uint32
}

type DestroyQPResp struct {
	_              structs.HostLayout
	EventsReported uint32
}

type PostSend struct {
	_        structs.HostLayout
	Response uint64
	QPHandle uint32
	WRCount  uint32
	SGECount uint32
	WQESize  uint32
}

type PostSendResp struct {
	_     structs.HostLayout
	BadWR uint32
}

// PostSendWQESize is sizeof(struct ib_uverbs_send_wr); the doorbell passes it
// as wqe_size because newer kernels reject smaller values even with no WRs.
const PostSendWQESize = 56

// struct ib_uverbs_wc: what rxe writes into each CQ slot.
type WC struct {
	_            structs.HostLayout
	WRID         uint64
	Status       uint32
	Opcode       uint32
	VendorErr    uint32
	ByteLen      uint32
	Imm          uint32 // ex.imm_data (big endian) or invalidate_rkey
	QPNum        uint32
	SrcQP        uint32
	WCFlags      uint32
	PKeyIndex    uint16
	SLID         uint16
	SL           uint8
	DLIDPathBits uint8
	PortNum      uint8
	Reserved     uint8
}

// struct mminfo (rdma/rdma_user_rxe.h): where to mmap a queue.
type MMInfo struct {
	_      structs.HostLayout
	Offset uint64
	Size   uint32
	Pad    uint32
}

type RxeCreateCQResp struct {
	_  structs.HostLayout
	MI MMInfo
}

type RxeCreateQPResp struct {
	_    structs.HostLayout
	RQMI MMInfo
	SQMI MMInfo
}

// struct rxe_sge.
type RxeSGE struct {
	_      structs.HostLayout
	Addr   uint64
	Length uint32
	LKey   uint32
}

// struct rxe_send_wr. WR is the union: rdma {remote_addr u64, rkey u32} at
// 0/8, atomic {remote_addr, compare_add, swap u64, rkey u32} at 0/8/16/24.
type RxeSendWR struct {
	_         structs.HostLayout
	WRID      uint64
	Reserved  uint32
	Opcode    uint32
	SendFlags uint32
	Imm       uint32 // ex.imm_data, big endian
	WR        [120]uint8
}

// struct rxe_dma_info without its flexible array.
type RxeDMAInfo struct {
	_         structs.HostLayout
	Length    uint32
	Resid     uint32
	CurSGE    uint32
	NumSGE    uint32
	SGEOffset uint32
	Reserved  uint32
}

// struct rxe_send_wqe without the SGE / inline area that follows it.
type RxeSendWQE struct {
	_           structs.HostLayout
	WR          RxeSendWR
	Status      uint32
	State       uint32
	IOVA        uint64
	Mask        uint32
	FirstPSN    uint32
	LastPSN     uint32
	AckLength   uint32
	SSN         uint32
	HasRdAtomic uint32
	DMA         RxeDMAInfo
}

// struct rxe_recv_wqe without the SGE array that follows it.
type RxeRecvWQE struct {
	_        structs.HostLayout
	WRID     uint64
	Reserved uint32
	Padding  uint32
	DMA      RxeDMAInfo
}

// Offsets within the rxe_send_wr union (wr.rdma / wr.atomic).
const (
	RxeWRRemoteAddrOffset = 0
	RxeWRRDMARKeyOffset   = 8
	RxeWRCompareAddOffset = 8
	RxeWRSwapOffset       = 16
	RxeWRAtomicRKeyOffset = 24
)

// struct rxe_queue_buf: the header of every mapped rxe queue; slots start at
// RxeQueueDataOffset.
const (
	RxeQueueLog2ElemSizeOffset = 0
	RxeQueueIndexMaskOffset    = 4
	RxeQueueProducerOffset     = 128
	RxeQueueConsumerOffset     = 256
	RxeQueueDataOffset         = 384
)
