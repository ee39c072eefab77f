package training

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	trainingv1 "github.com/forge-training/forge-training/clients/go/forge/training/v1"
)

// IsFinal reports whether a job in this state can never leave it: COMPLETED, FAILED or
// CANCELLED.
func IsFinal(state trainingv1.JobState) bool {
	switch state {
	case trainingv1.JobState_JOB_STATE_COMPLETED, trainingv1.JobState_JOB_STATE_FAILED,
		trainingv1.JobState_JOB_STATE_CANCELLED:
		return true
	}
	return false
}

// StartTraining starts a job (jobID "" lets the server name it); it comes back PENDING.
func (c *Client) StartTraining(ctx context.Context, jobID string, spec *trainingv1.TrainingRequest) (*trainingv1.TrainingJob, error) {
	response, err := c.Trainer.StartTraining(ctx, &trainingv1.StartTrainingRequest{TrainingJobId: jobID, Spec: spec})
	if err != nil {
		return nil, rpcError(err)
	}
	return response.GetTrainingJob(), nil
}

// ExportMetrics writes a job's whole metric history to w as one document: JSON
// ({"job", "format_version", "points": [...]}) or CSV (a header, then a row per point; extra
// metrics as extra.<name> columns). METRICS_EXPORT_FORMAT_UNSPECIFIED is JSON.
func (c *Client) ExportMetrics(ctx context.Context, name string, format trainingv1.MetricsExportFormat, w io.Writer) error {
	stream, err := c.Trainer.ExportTrainingMetrics(ctx, &trainingv1.ExportTrainingMetricsRequest{Name: name, Format: format})
	if err != nil {
		return rpcError(err)
	}
	for {
		response, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return rpcError(err)
		}
		if _, err := w.Write(response.GetData()); err != nil {
			return err
		}
	}
}

// GetJob gets a training job.
func (c *Client) GetJob(ctx context.Context, name string) (*trainingv1.TrainingJob, error) {
	response, err := c.Trainer.GetTrainingJob(ctx, &trainingv1.GetTrainingJobRequest{Name: name})
	if err != nil {
		return nil, rpcError(err)
	}
	return response.GetTrainingJob(), nil
}

// WaitForJob polls a job until it reaches a final state and returns it; a FAILED job is
// returned, not an error (its Error field says why). Bound the wait with ctx's deadline.
func (c *Client) WaitForJob(ctx context.Context, name string) (*trainingv1.TrainingJob, error) {
	ticker := time.NewTicker(c.pollInterval)
	defer ticker.Stop()
	for {
		job, err := c.GetJob(ctx, name)
		if err != nil {
			return nil, err
		}
		if IsFinal(job.GetState()) {
			return job, nil
		}
		select {
		case <-ctx.Done():
			return nil, &Error{Code: status.FromContextError(ctx.Err()).Code(),
				Message: fmt.Sprintf("job %s is still %s: %v", name, job.GetState(), ctx.Err())}
		case <-ticker.C:
		}
	}
}

// StopWatching, returned by a WatchMetrics callback, ends the watch without an error.
var StopWatching = errors.New("stop watching")

// WatchMetrics calls fn with each metric point of a job after fromSequence (0: from the
// first), in order, live, until the job reaches a final state. A dropped stream (UNAVAILABLE,
// or an end before a final state) is reopened after the last point delivered, so no point is
// missed or repeated; WithMaxReconnects bounds the reopenings in a row without a new point.
// An error from fn ends the watch and is returned, except StopWatching, which returns nil.
func (c *Client) WatchMetrics(ctx context.Context, name string, fromSequence int64,
	fn func(*trainingv1.TrainingMetrics) error) error {
	last := fromSequence
	failures := 0
	for {
		result := c.watchOnce(ctx, name, &last, fn)
		if result.fnErr != nil {
			if errors.Is(result.fnErr, StopWatching) {
				return nil
			}
			return result.fnErr
		}
		if result.streamErr == nil && IsFinal(result.state) {
			return nil
		}
		if result.streamErr != nil && status.Code(result.streamErr) != codes.Unavailable {
			return rpcError(result.streamErr)
		}
		if result.delivered {
			failures = 0
		}
		failures++
		if failures > c.maxReconnects {
			if result.streamErr != nil {
				return rpcError(result.streamErr)
			}
			return &Error{Code: codes.Unavailable, Message: fmt.Sprintf(
				"the metric stream of %s ended %d times in a row before the job reached a final state "+
					"(last state %s, last sequence %d)", name, failures, result.state, last)}
		}
		// Back off 0.1 s, 0.2 s, ... up to 2 s between reconnects in a row.
		backoff := 2 * time.Second
		if failures < 5 {
			backoff = 100 * time.Millisecond << (failures - 1)
		}
		select {
		case <-ctx.Done():
			return rpcError(status.FromContextError(ctx.Err()).Err())
		case <-time.After(backoff):
		}
	}
}

// watchResult is how one metric stream ended.
type watchResult struct {
	state     trainingv1.JobState // the last state the stream reported
	delivered bool                // whether fn got at least one point
	streamErr error               // nil when the stream ended cleanly
	fnErr     error               // what fn returned to stop the watch
}

// watchOnce reads one WatchTrainingMetrics stream from *last on, advancing *last past each
// point delivered to fn.
func (c *Client) watchOnce(ctx context.Context, name string, last *int64,
	fn func(*trainingv1.TrainingMetrics) error) watchResult {
	ctx, cancel := context.WithCancel(ctx) // frees the call when fn stops the watch early
	defer cancel()
	result := watchResult{state: trainingv1.JobState_JOB_STATE_UNSPECIFIED}
	stream, err := c.Trainer.WatchTrainingMetrics(ctx, &trainingv1.WatchTrainingMetricsRequest{
		Name: name, FromSequence: *last, Follow: true,
	})
	if err != nil {
		result.streamErr = err
		return result
	}
	for {
		response, err := stream.Recv()
		if err == io.EOF {
			return result
		}
		if err != nil {
			result.streamErr = err
			return result
		}
		if response.GetJobState() != trainingv1.JobState_JOB_STATE_UNSPECIFIED {
			result.state = response.GetJobState()
		}
		for _, point := range response.GetPoints() {
			if point.GetSequence() != 0 && point.GetSequence() <= *last {
				continue // delivered before a reconnect
			}
			if point.GetSequence() != 0 {
				*last = point.GetSequence()
			}
			result.delivered = true
			if err := fn(point); err != nil {
				result.fnErr = err
				return result
			}
		}
	}
}
