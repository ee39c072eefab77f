package training

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	trainingv1 "github.com/forge-training/forge-training/clients/go/forge/training/v1"
)

// The checks of a received export, on streams a real server never sends: these are what
// protect a user from a corrupted or truncated download.

type fakeExport []*trainingv1.ExportModelResponse

func (f *fakeExport) Recv() (*trainingv1.ExportModelResponse, error) {
	if len(*f) == 0 {
		return nil, io.EOF
	}
	next := (*f)[0]
	*f = (*f)[1:]
	return next, nil
}

var artifact = []byte("0123456789abcdef")

func metadataOf(data []byte) *trainingv1.ExportMetadata {
	sum := sha256.Sum256(data)
	return &trainingv1.ExportMetadata{SizeBytes: int64(len(data)), Sha256: hex.EncodeToString(sum[:])}
}

// receive runs copyExport and checkExport over messages as ExportModel does.
func receive(messages ...*trainingv1.ExportModelResponse) ([]byte, error) {
	var out bytes.Buffer
	hasher := sha256.New()
	stream := fakeExport(messages)
	metadata, written, err := copyExport("jobs/x", &stream, &out, hasher, nil, 0)
	if err == nil {
		err = checkExport("jobs/x", metadata, written, hasher)
	}
	return out.Bytes(), err
}

func chunk(offset int, data []byte) *trainingv1.ExportModelResponse {
	return &trainingv1.ExportModelResponse{Offset: int64(offset), Data: data}
}

func TestAWholeExportPasses(t *testing.T) {
	first := &trainingv1.ExportModelResponse{Metadata: metadataOf(artifact), Data: artifact[:10]}
	got, err := receive(first, chunk(10, artifact[10:]))
	if err != nil || !bytes.Equal(got, artifact) {
		t.Fatalf("got %q, %v", got, err)
	}
}

func TestCorruptExportsAreDataLoss(t *testing.T) {
	tampered := append([]byte{}, artifact...)
	tampered[3] = 'X'
	cases := map[string][]*trainingv1.ExportModelResponse{
		"does not match":                 {{Metadata: metadataOf(artifact), Data: tampered}},
		"received 10 bytes, expected 16": {{Metadata: metadataOf(artifact), Data: artifact[:10]}},
		"chunk at offset 12, expected 10": {
			{Metadata: metadataOf(artifact), Data: artifact[:10]}, chunk(12, artifact[12:]),
		},
		"the first message carries no metadata": {chunk(0, artifact)},
		"metadata sent twice": {
			{Metadata: metadataOf(artifact)}, {Metadata: metadataOf(artifact), Data: artifact},
		},
		"the stream was empty": {},
	}
	for want, messages := range cases {
		_, err := receive(messages...)
		e, ok := err.(*Error)
		if !ok || e.Code != codes.DataLoss || !strings.Contains(e.Message, want) {
			t.Errorf("%s: got %v, want DATA_LOSS saying so", want, err)
		}
	}
}

// A resumed download continues at the bytes already written and refuses a different artifact.
func TestAResumedExportMustBeTheSameArtifact(t *testing.T) {
	known := metadataOf(artifact)
	hasher := sha256.New()
	hasher.Write(artifact[:10])
	var out bytes.Buffer
	stream := fakeExport{{Metadata: metadataOf(artifact), Offset: 10, Data: artifact[10:]}}
	metadata, written, err := copyExport("jobs/x", &stream, &out, hasher, known, 10)
	if err == nil {
		err = checkExport("jobs/x", metadata, written, hasher)
	}
	if err != nil || written != 16 || out.String() != string(artifact[10:]) {
		t.Fatalf("resumed: wrote %q (%d in all), %v", out.String(), written, err)
	}

	other := fakeExport{{Metadata: metadataOf([]byte("another model")), Offset: 10, Data: artifact[10:]}}
	_, _, err = copyExport("jobs/x", &other, io.Discard, sha256.New(), known, 10)
	if e, ok := err.(*Error); !ok || e.Code != codes.DataLoss || !strings.Contains(e.Message, "changed") {
		t.Fatalf("a changed artifact on resume: %v, want DATA_LOSS", err)
	}
}
