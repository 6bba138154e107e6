package objstore

import (
	"errors"
	"net"

	"github.com/aws/smithy-go"
)

// Reason is the part of a store error a person reads: the store's own code and
// message, or the network's error, rather than the SDK's whole chain (doctor's
// storage check and fleet health's storage-down say it; their details keep the rest).
func Reason(err error) string {
	var api smithy.APIError
	if errors.As(err, &api) {
		return api.ErrorCode() + ": " + api.ErrorMessage()
	}
	var op *net.OpError
	if errors.As(err, &op) {
		return op.Error()
	}
	return err.Error()
}
