package training

import (
	"errors"
	"fmt"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
)

// Error is a failed call to the service (or a failure the client detected, such as a corrupt
// export, DATA_LOSS). errors.As(err, &e) finds it; status.Code(err) gives its code too.
type Error struct {
	Code    codes.Code
	Message string
	// From the google.rpc.BadRequest detail: which field of the request is wrong and how.
	FieldViolations []FieldViolation
	// From the google.rpc.RequestInfo detail: the id the server's log gives this call.
	RequestID string
	status    *status.Status
}

// FieldViolation is one entry of a google.rpc.BadRequest detail.
type FieldViolation struct {
	Field       string // the request field's path, e.g. "data_config.train_dataset"
	Description string
	Reason      string // e.g. "REQUIRED"
}

// Error reads like the Python SDK's: "NOT_FOUND: training job ... not found", or the field
// violations when there are some.
func (e *Error) Error() string {
	text := e.Message
	if len(e.FieldViolations) > 0 {
		parts := make([]string, 0, len(e.FieldViolations))
		for _, v := range e.FieldViolations {
			if v.Field != "" {
				parts = append(parts, v.Field+": "+v.Description)
			} else {
				parts = append(parts, v.Description)
			}
		}
		text = strings.Join(parts, "; ")
	}
	if text == "" {
		text = "(no message)"
	}
	return codeName(e.Code) + ": " + strings.Join(strings.Fields(text), " ")
}

// GRPCStatus lets status.Code and status.FromError read an *Error.
func (e *Error) GRPCStatus() *status.Status {
	if e.status != nil {
		return e.status
	}
	return status.New(e.Code, e.Message)
}

// codeName is the code as the gRPC documentation and the other SDKs spell it (NOT_FOUND);
// codes.Code's own String gives "NotFound".
func codeName(c codes.Code) string {
	if name, ok := code.Code_name[int32(c)]; ok {
		return name
	}
	return fmt.Sprintf("CODE_%d", uint32(c))
}

// rpcError turns a gRPC status error into an *Error with the details decoded; any other error
// (nil included) comes back unchanged.
func rpcError(err error) error {
	if err == nil {
		return nil
	}
	var already *Error
	if errors.As(err, &already) {
		return err
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	out := &Error{Code: st.Code(), Message: st.Message(), status: st}
	for _, detail := range st.Proto().GetDetails() {
		switch detail.GetTypeUrl() {
		case typeURLPrefix + badRequestName:
			out.FieldViolations = append(out.FieldViolations, fieldViolations(detail.GetValue())...)
		case typeURLPrefix + requestInfoName:
			out.RequestID = requestID(detail.GetValue())
		}
	}
	return out
}

const (
	typeURLPrefix   = "type.googleapis.com/"
	badRequestName  = "google.rpc.BadRequest"
	requestInfoName = "google.rpc.RequestInfo"
)

// fieldViolations reads a google.rpc.BadRequest from its wire form. The details are decoded
// here rather than with genproto's errdetails because the errdetails of genproto releases
// before 2024 (Debian 12's among them) have no FieldViolation.reason (field 3), which the
// server sets. A malformed detail gives what was read before the damage: it must not hide the
// error it came with.
func fieldViolations(wire []byte) []FieldViolation {
	var out []FieldViolation
	eachField(wire, func(number protowire.Number, value []byte) {
		if number != 1 { // repeated FieldViolation field_violations = 1
			return
		}
		var v FieldViolation
		eachField(value, func(number protowire.Number, value []byte) {
			switch number {
			case 1:
				v.Field = string(value)
			case 2:
				v.Description = string(value)
			case 3:
				v.Reason = string(value)
			}
		})
		out = append(out, v)
	})
	return out
}

// requestID reads google.rpc.RequestInfo.request_id (field 1) from its wire form.
func requestID(wire []byte) string {
	id := ""
	eachField(wire, func(number protowire.Number, value []byte) {
		if number == 1 {
			id = string(value)
		}
	})
	return id
}

// eachField calls fn with the number and bytes of every length-delimited field of a message's
// wire form (every field the detail messages above read is a string or a message), skipping
// the others, and stops at the first malformed byte.
func eachField(wire []byte, fn func(protowire.Number, []byte)) {
	for len(wire) > 0 {
		number, typ, n := protowire.ConsumeTag(wire)
		if n < 0 {
			return
		}
		wire = wire[n:]
		if typ == protowire.BytesType {
			value, m := protowire.ConsumeBytes(wire)
			if m < 0 {
				return
			}
			fn(number, value)
			n = m
		} else {
			n = protowire.ConsumeFieldValue(number, typ, wire)
			if n < 0 {
				return
			}
		}
		wire = wire[n:]
	}
}

func dataLoss(resource, format string, args ...interface{}) *Error {
	return &Error{Code: codes.DataLoss, Message: "export of " + resource + " is corrupt: " + fmt.Sprintf(format, args...)}
}
