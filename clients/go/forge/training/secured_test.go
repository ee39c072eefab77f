package training_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/forge-training/forge-training/clients/go/forge/training"
)

// pemPair is a certificate and its private key, PEM.
type pemPair struct{ cert, key []byte }

// issue makes a certificate for subject signed by issuer (self-signed when issuer is nil).
func issue(t *testing.T, subject string, ca bool, issuer *x509.Certificate, issuerKey *ecdsa.PrivateKey) (pemPair, *x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	template := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: subject},
		NotBefore:             time.Now().Add(-5 * time.Minute),
		NotAfter:              time.Now().Add(24 * time.Hour),
		BasicConstraintsValid: true,
		IsCA:                  ca,
	}
	if ca {
		template.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
	} else {
		template.KeyUsage = x509.KeyUsageDigitalSignature
		template.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
		template.DNSNames = []string{"localhost"}
		template.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	if issuer == nil {
		issuer, issuerKey = template, key
	}
	der, err := x509.CreateCertificate(rand.Reader, template, issuer, &key.PublicKey, issuerKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return pemPair{
		cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		key:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}, cert, key
}

// A server that wants an API key and a client certificate from its CA: the client's key, its
// project (x-forge-project) and its certificate all reach the server.
func TestAPIKeyProjectAndMutualTLS(t *testing.T) {
	caPEM, caCert, caKey := issue(t, "forge test CA", true, nil, nil)
	serverPEM, _, _ := issue(t, "server", false, caCert, caKey)
	clientPEM, _, _ := issue(t, "client", false, caCert, caKey)
	pki := t.TempDir()
	files := map[string][]byte{"ca.crt": caPEM.cert, "server.crt": serverPEM.cert, "server.key": serverPEM.key}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(pki, name), content, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	// The key is made before the server starts, in the data dir it will use.
	dataDir := t.TempDir()
	out, err := runPython("keys", "--data-dir", dataDir, "create", "--name", "go-sdk",
		"--role", "a=trainer", "--role", "b=viewer")
	if err != nil {
		t.Fatal(err)
	}
	apiKey := strings.TrimSpace(out)
	server, err := launch(dataDir, "--auth", "api-key",
		"--tls-cert", filepath.Join(pki, "server.crt"), "--tls-key", filepath.Join(pki, "server.key"),
		"--tls-client-ca", filepath.Join(pki, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		server.stop()
		if t.Failed() {
			t.Logf("server log:\n%s", server.log)
		}
	})

	mutual, err := training.TLSConfig(caPEM.cert, clientPEM.cert, clientPEM.key)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	csv := writeCSV(t, 50)

	inA := dial(t, server.Address, training.WithTLS(mutual), training.WithAPIKey(apiKey), training.WithProject("a"))
	dataset, err := inA.UploadDataset(ctx, csv, training.UploadOptions{DatasetID: "secured", LabelColumn: "label"})
	if err != nil {
		t.Fatalf("UploadDataset with key, project a and a client certificate: %v", err)
	}
	if dataset.GetName() != "projects/a/datasets/secured" {
		t.Errorf("dataset %s, want it in project a", dataset.GetName())
	}
	if got, err := inA.GetDataset(ctx, "secured"); err != nil || got.GetName() != dataset.GetName() {
		t.Errorf("GetDataset by bare id in project a: %v, %v", got.GetName(), err)
	}

	// The same key with project b: the bare id now means projects/b/datasets/secured.
	inB := dial(t, server.Address, training.WithTLS(mutual), training.WithAPIKey(apiKey), training.WithProject("b"))
	if _, err := inB.GetDataset(ctx, "secured"); status.Code(err) != codes.NotFound ||
		!strings.Contains(err.Error(), "projects/b/datasets/secured") {
		t.Errorf("GetDataset by bare id in project b: %v, want NOT_FOUND for projects/b/datasets/secured", err)
	}

	// The API key from FORGE_TRAINING_API_KEY when no WithAPIKey is given.
	t.Setenv(training.APIKeyEnv, apiKey)
	fromEnv := dial(t, server.Address, training.WithTLS(mutual), training.WithProject("a"))
	if _, err := fromEnv.GetDataset(ctx, "secured"); err != nil {
		t.Errorf("GetDataset with the key from %s: %v", training.APIKeyEnv, err)
	}

	noKey := dial(t, server.Address, training.WithTLS(mutual), training.WithAPIKey(""))
	if _, err := noKey.GetDataset(ctx, "secured"); status.Code(err) != codes.Unauthenticated {
		t.Errorf("a call without a key: %v, want UNAUTHENTICATED", err)
	}

	// TLS without a client certificate: the handshake fails.
	serverOnly, err := training.TLSConfig(caPEM.cert, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	anonymous := dial(t, server.Address, training.WithTLS(serverOnly), training.WithAPIKey(apiKey))
	short, cancelShort := context.WithTimeout(ctx, 5*time.Second)
	defer cancelShort()
	if _, err := anonymous.GetDataset(short, "secured"); status.Code(err) != codes.Unavailable {
		t.Errorf("a call without a client certificate: %v, want UNAVAILABLE", err)
	}

	if _, err := training.TLSConfig(caPEM.cert, clientPEM.cert, nil); err == nil ||
		!strings.Contains(err.Error(), "go together") {
		t.Errorf("TLSConfig with a certificate but no key: %v, want an error saying both go together", err)
	}
}
