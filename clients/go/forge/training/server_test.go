package training_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The tests run against this repository's Python server, started as `python -m server serve`
// on a free port. FORGE_TRAINING_PYTHON names the interpreter; default: <repo>/.venv/bin/python,
// which `make venv` (or `make test-go`) creates.
const pythonEnv = "FORGE_TRAINING_PYTHON"

// testServer is one running server process.
type testServer struct {
	Address string // host:port
	DataDir string
	cmd     *exec.Cmd
	log     *lockedBuffer // its stderr, shown when a test fails
	exited  chan struct{}
}

var servingOn = regexp.MustCompile(`serving on (\S+:\d+)`)

// repoRoot walks up from the package directory (go test's working directory) to the
// repository root, the directory with server/__main__.py.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "server", "__main__.py")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no server/__main__.py above the test's directory: run the tests inside the repository")
		}
		dir = parent
	}
}

// python is the interpreter that runs the server, and the repository root to run it in.
func python() (interpreter, root string, err error) {
	root, err = repoRoot()
	if err != nil {
		return "", "", err
	}
	interpreter = os.Getenv(pythonEnv)
	if interpreter == "" {
		interpreter = filepath.Join(root, ".venv", "bin", "python")
	}
	if _, err := os.Stat(interpreter); err != nil {
		return "", "", fmt.Errorf("no Python for the server at %s: run `make venv` at the repository root, "+
			"or set %s to a Python with the server's dependencies", interpreter, pythonEnv)
	}
	return interpreter, root, nil
}

// runPython runs `python -m server <args>` to completion and returns its stdout.
func runPython(args ...string) (string, error) {
	interpreter, root, err := python()
	if err != nil {
		return "", err
	}
	cmd := exec.Command(interpreter, append([]string{"-m", "server"}, args...)...)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("python -m server %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out), nil
}

// launch starts a server on 127.0.0.1:0 with its state in dataDir and returns once it logs
// the address it serves on.
func launch(dataDir string, args ...string) (*testServer, error) {
	interpreter, root, err := python()
	if err != nil {
		return nil, err
	}
	argv := append([]string{"-m", "server", "serve", "--address", "127.0.0.1:0", "--data-dir", dataDir}, args...)
	cmd := exec.Command(interpreter, argv...)
	cmd.Dir = root
	cmd.SysProcAttr = serverProcAttr()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	server := &testServer{DataDir: dataDir, cmd: cmd, log: &lockedBuffer{}, exited: make(chan struct{})}
	address := make(chan string, 1)
	go func() {
		// Read stderr to its end, so the server never blocks on a full pipe.
		lines := bufio.NewScanner(stderr)
		for lines.Scan() {
			server.log.WriteLine(lines.Text())
			if m := servingOn.FindStringSubmatch(lines.Text()); m != nil {
				select {
				case address <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		_ = cmd.Wait()
		close(server.exited)
	}()
	select {
	case server.Address = <-address:
		return server, nil
	case <-server.exited:
		return nil, fmt.Errorf("the server exited before serving (%s):\n%s", cmd.ProcessState, server.log)
	case <-time.After(60 * time.Second):
		server.stop()
		return nil, fmt.Errorf("the server did not log its address within 60 s:\n%s", server.log)
	}
}

// startServer starts a server for one test, stopped when the test ends.
func startServer(t *testing.T, args ...string) *testServer {
	t.Helper()
	server, err := launch(t.TempDir(), args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		server.stop()
		if t.Failed() {
			t.Logf("server log:\n%s", server.log)
		}
	})
	return server
}

// stop asks the server to shut down (SIGTERM) and kills it if it has not within 15 s.
func (s *testServer) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

// logged reports whether the server's log has text within timeout: the access log line of a
// call is written after its response.
func (s *testServer) logged(text string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for !strings.Contains(s.log.String(), text) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// The server most tests share, started by the first test that asks and stopped by TestMain.
var shared struct {
	once   sync.Once
	server *testServer
	err    error
}

func sharedServer(t *testing.T) *testServer {
	t.Helper()
	shared.once.Do(func() {
		dir, err := os.MkdirTemp("", "forge-go-sdk-")
		if err != nil {
			shared.err = err
			return
		}
		shared.server, shared.err = launch(dir)
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("shared server log so far:\n%s", shared.server.log)
		}
	})
	return shared.server
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.server != nil {
		shared.server.stop()
		_ = os.RemoveAll(shared.server.DataDir)
	}
	os.Exit(code)
}

// lockedBuffer collects a server's log lines from its reader goroutine.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) WriteLine(line string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.WriteString(line)
	b.buf.WriteByte('\n')
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
