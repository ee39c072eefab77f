package training

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	trainingv1 "github.com/forge-training/forge-training/clients/go/forge/training/v1"
)

// ExportModel streams a completed job's (or model version's) model in format to w and returns
// the export's metadata once the bytes written are exactly the artifact it describes: its size,
// its sha256 and every chunk's offset are checked, and a mismatch is an *Error with code
// DATA_LOSS. The bytes reach w as they arrive, before that check: discard what w received when
// an error comes back (ExportModelToFile does). When the connection drops mid-stream
// (UNAVAILABLE) the download continues from the last byte received, up to WithExportRetries
// times, as long as the artifact's sha256 is unchanged.
func (c *Client) ExportModel(ctx context.Context, name string, format trainingv1.ExportFormat,
	w io.Writer) (*trainingv1.ExportMetadata, error) {
	hasher := sha256.New()
	var metadata *trainingv1.ExportMetadata
	var written int64
	for attempt := 0; ; attempt++ {
		var err error
		metadata, written, err = c.exportOnce(ctx, name, format, written, metadata, w, hasher)
		if err == nil {
			break
		}
		if status.Code(err) != codes.Unavailable || attempt == c.exportRetries || metadata == nil {
			return nil, rpcError(err)
		}
		select {
		case <-ctx.Done():
			return nil, rpcError(status.FromContextError(ctx.Err()).Err())
		case <-time.After(retryDelay(attempt)):
		}
	}
	if err := checkExport(name, metadata, written, hasher); err != nil {
		return nil, err
	}
	return metadata, nil
}

func retryDelay(attempt int) time.Duration {
	if attempt >= 4 {
		return 2 * time.Second
	}
	return 200 * time.Millisecond << attempt
}

// exportOnce is one ExportModel call from offset on, appended to w and hasher. It returns the
// metadata (known, or the stream's first message when known is nil) and the bytes written in
// all; written counts what reached w even when the call fails, so a retry continues there.
func (c *Client) exportOnce(ctx context.Context, name string, format trainingv1.ExportFormat, offset int64,
	known *trainingv1.ExportMetadata, w io.Writer, hasher hash.Hash) (*trainingv1.ExportMetadata, int64, error) {
	ctx, cancel := context.WithCancel(ctx) // frees the call when a check below fails mid-stream
	defer cancel()
	stream, err := c.Trainer.ExportModel(ctx, &trainingv1.ExportModelRequest{Name: name, Format: format, Offset: offset})
	if err != nil {
		return known, offset, err
	}
	return copyExport(name, stream, w, hasher, known, offset)
}

// exportStream is the receiving side of an ExportModel call.
type exportStream interface {
	Recv() (*trainingv1.ExportModelResponse, error)
}

// copyExport appends an export stream's bytes (from offset start) to w and hasher, checking
// that the metadata comes first and once, that chunks are contiguous and, for a resumed
// stream, that it describes the known artifact. checkExport checks the whole at the end.
func copyExport(name string, stream exportStream, w io.Writer, hasher hash.Hash,
	known *trainingv1.ExportMetadata, start int64) (*trainingv1.ExportMetadata, int64, error) {
	metadata := known
	written := start
	first := true
	for {
		response, err := stream.Recv()
		if err == io.EOF {
			return metadata, written, nil
		}
		if err != nil {
			return metadata, written, err
		}
		if response.GetMetadata() != nil {
			if !first {
				return metadata, written, dataLoss(name, "metadata sent twice")
			}
			if known != nil && response.GetMetadata().GetSha256() != known.GetSha256() {
				return metadata, written, dataLoss(name, "the artifact changed while the download was resumed")
			}
			metadata = proto.Clone(response.GetMetadata()).(*trainingv1.ExportMetadata)
		} else if first {
			return metadata, written, dataLoss(name, "the first message carries no metadata")
		}
		first = false
		if data := response.GetData(); len(data) > 0 {
			if response.GetOffset() != written {
				return metadata, written, dataLoss(name, "chunk at offset %d, expected %d", response.GetOffset(), written)
			}
			if _, err := w.Write(data); err != nil {
				return metadata, written, fmt.Errorf("export of %s: writing: %w", name, err)
			}
			hasher.Write(data)
			written += int64(len(data))
		}
	}
}

// checkExport is DATA_LOSS unless the bytes received are the whole artifact the metadata
// describes.
func checkExport(name string, metadata *trainingv1.ExportMetadata, written int64, hasher hash.Hash) error {
	if metadata == nil {
		return dataLoss(name, "the stream was empty")
	}
	if written != metadata.GetSizeBytes() {
		return dataLoss(name, "received %d bytes, expected %d", written, metadata.GetSizeBytes())
	}
	digest := hex.EncodeToString(hasher.Sum(nil))
	if digest != strings.ToLower(strings.TrimSpace(metadata.GetSha256())) {
		return dataLoss(name, "sha256 %s does not match %s", digest, metadata.GetSha256())
	}
	return nil
}

// ExportModelToFile exports into path: the bytes go to a temporary file beside it that is
// renamed to path only once ExportModel has checked them, so path never holds a partial or
// corrupt model.
func (c *Client) ExportModelToFile(ctx context.Context, name string, format trainingv1.ExportFormat,
	path string) (*trainingv1.ExportMetadata, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".export-*.part")
	if err != nil {
		return nil, fmt.Errorf("export of %s: %w", name, err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	metadata, err := c.ExportModel(ctx, name, format, tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if closeErr := tmp.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return nil, err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return nil, fmt.Errorf("export of %s: %w", name, err)
	}
	return metadata, nil
}
