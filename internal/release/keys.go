package release

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"

	"aead.dev/minisign"
	"github.com/google/renameio/v2"
	"golang.org/x/crypto/blake2b"
	"golang.org/x/crypto/scrypt"
)

// Keys are the public keys a signature may be made by; any one of them will do, so
// a key is rotated by adding the new one everywhere before signing with it.
type Keys []minisign.PublicKey

// ParseKeys reads minisign public keys, each either the base64 line alone (as in
// update.public_keys) or the whole .pub file with its comment line.
func ParseKeys(texts []string) (Keys, error) {
	keys := make(Keys, 0, len(texts))
	for i, text := range texts {
		var k minisign.PublicKey
		if err := k.UnmarshalText([]byte(strings.TrimSpace(text))); err != nil {
			return nil, fmt.Errorf("public key %d (%q): %w: give the second line of the .pub file from `cis490 release keygen` or `minisign -G`", i+1, text, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// KeyID is how minisign names a key: its id in upper-case hex.
func KeyID(id uint64) string { return strings.ToUpper(strconv.FormatUint(id, 16)) }

// ErrBadSignature is Verify's refusal.
var ErrBadSignature = errors.New("the manifest's signature does not verify")

// Verify checks that sig is a minisign signature of manifest by one of keys, and
// returns the manifest parsed. Only bytes that verified are parsed.
func Verify(manifest, sig []byte, keys Keys) (Manifest, error) {
	if err := verifySignature(manifest, sig, keys); err != nil {
		return Manifest{}, err
	}
	m, err := Parse(manifest)
	if err != nil {
		return m, fmt.Errorf("the signature verifies, but: %w", err)
	}
	return m, nil
}

// verifySignature checks that sig is a minisign signature of data by one of keys.
func verifySignature(data, sig []byte, keys Keys) error {
	if len(keys) == 0 {
		return fmt.Errorf("%w: no public key is configured to check it against", ErrBadSignature)
	}
	var s minisign.Signature
	if err := s.UnmarshalText(sig); err != nil {
		return fmt.Errorf("%w: %s is not a minisign signature: %v", ErrBadSignature, SignatureName, err)
	}
	var ids []string
	for _, k := range keys {
		ids = append(ids, KeyID(k.ID()))
		if k.ID() == s.KeyID && minisign.Verify(k, data, sig) {
			return nil
		}
	}
	if !containsID(keys, s.KeyID) {
		return fmt.Errorf("%w: it is by key %s, which is not one of the configured keys %v", ErrBadSignature, KeyID(s.KeyID), ids)
	}
	return fmt.Errorf("%w: it claims key %s but the manifest or the signature was altered", ErrBadSignature, KeyID(s.KeyID))
}

func containsID(keys Keys, id uint64) bool {
	for _, k := range keys {
		if k.ID() == id {
			return true
		}
	}
	return false
}

// SecretKey is a signing key, decrypted.
type SecretKey = minisign.PrivateKey

// Keygen writes a new key pair: the secret key at secretPath (mode 0600, encrypted
// with password unless password is ""), the public key at secretPath's name with
// .pub for .key. It never overwrites a file. It returns the public key.
func Keygen(secretPath, password string) (minisign.PublicKey, string, error) {
	pubPath := PublicPath(secretPath)
	for _, p := range []string{secretPath, pubPath} {
		if _, err := os.Lstat(p); err == nil {
			return minisign.PublicKey{}, "", fmt.Errorf("%s already exists: keygen never overwrites a key; move it away or choose another --out", p)
		}
	}
	pub, priv, err := minisign.GenerateKey(nil)
	if err != nil {
		return pub, "", err
	}
	var secret []byte
	if password == "" {
		secret, err = priv.MarshalText()
	} else {
		secret, err = encryptKey(password, priv, KDF.Ops, KDF.Mem)
	}
	if err != nil {
		return pub, "", err
	}
	pubText, _ := pub.MarshalText()
	if err := os.MkdirAll(filepath.Dir(secretPath), 0o700); err != nil {
		return pub, "", err
	}
	if err := writeNew(secretPath, append(secret, '\n'), 0o600); err != nil {
		return pub, "", err
	}
	if err := writeNew(pubPath, append(pubText, '\n'), 0o644); err != nil {
		return pub, "", err
	}
	return pub, pubPath, nil
}

// writeNew writes a file whole, failing if it exists: renameio's temp file and
// rename would replace one, link(2) does not.
func writeNew(path string, data []byte, perm os.FileMode) error {
	t, err := renameio.TempFile(filepath.Dir(path), path)
	if err != nil {
		return err
	}
	defer t.Cleanup()
	if err := t.Chmod(perm); err != nil {
		return err
	}
	if _, err := t.Write(data); err != nil {
		return err
	}
	if err := t.Sync(); err != nil {
		return err
	}
	if err := os.Link(t.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// PublicPath is where Keygen puts the public key of the secret key at secretPath.
func PublicPath(secretPath string) string {
	return strings.TrimSuffix(secretPath, ".key") + ".pub"
}

// Encrypted says whether the secret key file at path needs a password.
func Encrypted(path string) (bool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	return minisign.IsEncrypted(data), nil
}

// LoadSecretKey reads the secret key at path, decrypting it with password when it is
// encrypted.
func LoadSecretKey(path, password string) (SecretKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return SecretKey{}, fmt.Errorf("signing key: %w", err)
	}
	if !minisign.IsEncrypted(data) {
		var k SecretKey
		if err := k.UnmarshalText(bytes.TrimSpace(data)); err != nil {
			return k, fmt.Errorf("signing key %s: %w", path, err)
		}
		return k, nil
	}
	k, err := minisign.DecryptKey(password, bytes.TrimSpace(data))
	if err != nil {
		return k, fmt.Errorf("signing key %s: %w (a wrong password?)", path, err)
	}
	return k, nil
}

// Sign signs manifest the way `minisign -S` does (pre-hashed), so `minisign -V` and
// Verify both accept it. The trusted comment names the release.
func Sign(key SecretKey, manifest []byte, m Manifest, now time.Time) []byte {
	r := minisign.NewReader(bytes.NewReader(manifest))
	_, _ = io.Copy(io.Discard, r) // a bytes.Reader does not fail
	trusted := fmt.Sprintf("timestamp:%d\tfile:%s\tcis490 %s seq %d", now.Unix(), ManifestName, m.Commit, m.Seq)
	untrusted := "signature from cis490 release key " + KeyID(key.ID())
	return r.SignWithComments(key, trusted, untrusted)
}

// KDF is the scrypt cost of a new encrypted secret key: libsodium's "sensitive"
// limits, what `minisign -G` uses (1 GiB, a few seconds). Tests lower it; the key file
// records it, so any reader, `minisign` included, decrypts either.
var KDF = struct{ Ops, Mem uint64 }{33554432, 1073741824}

// encryptKey is minisign.EncryptKey with the cost as a parameter (the library fixes
// it at the sensitive limits): the key's id and Ed25519 key, with a BLAKE2b-256 tag,
// XORed with an scrypt key stream, in minisign's secret key format.
func encryptKey(password string, key minisign.PrivateKey, ops, mem uint64) ([]byte, error) {
	plain, err := key.MarshalText() // the unencrypted format: id and key at 54:126
	if err != nil {
		return nil, err
	}
	raw, err := base64.StdEncoding.DecodeString(string(bytes.TrimPrefix(plain, []byte(secretComment))))
	if err != nil || len(raw) != secretKeySize {
		return nil, fmt.Errorf("encrypt the secret key: unexpected key encoding")
	}
	idAndKey := raw[54:126]
	var salt [32]byte
	if _, err := rand.Read(salt[:]); err != nil {
		return nil, err
	}
	n, r, p := scryptParams(ops, mem)
	stream, err := scrypt.Key([]byte(password), salt[:], n, r, p, 104)
	if err != nil {
		return nil, err
	}
	var msg [74]byte
	binary.LittleEndian.PutUint16(msg[:2], minisign.EdDSA)
	copy(msg[2:], idAndKey)
	tag := blake2b.Sum256(msg[:])
	cipher := append(append([]byte{}, idAndKey...), tag[:]...)
	for i := range cipher {
		cipher[i] ^= stream[i]
	}
	out := make([]byte, secretKeySize)
	binary.LittleEndian.PutUint16(out[0:], minisign.EdDSA)
	binary.LittleEndian.PutUint16(out[2:], 0x6353) // "Sc": scrypt
	binary.LittleEndian.PutUint16(out[4:], 0x3242) // "B2": BLAKE2b
	copy(out[6:38], salt[:])
	binary.LittleEndian.PutUint64(out[38:], ops)
	binary.LittleEndian.PutUint64(out[46:], mem)
	copy(out[54:], cipher)
	return append([]byte(secretComment), base64.StdEncoding.EncodeToString(out)...), nil
}

const (
	secretComment = "untrusted comment: minisign encrypted secret key\n"
	secretKeySize = 158
)

// scryptParams is libsodium's (and minisign's) mapping of an ops and memory limit to
// scrypt's N, r and p.
func scryptParams(ops, mem uint64) (n, r, p int) {
	const minOps, maxRP = 1 << 15, 0x3fffffff
	ops = max(ops, minOps)
	r = 8
	if ops < mem/32 {
		p = 1
		for i := 1; i < 63; i++ {
			if n = 1 << i; uint64(n) > ops/(8*uint64(r)) {
				break
			}
		}
		return n, r, p
	}
	for i := 1; i < 63; i++ {
		if n = 1 << i; uint64(n) > mem/(256*uint64(r)) {
			break
		}
	}
	if rp := (ops / 4) / uint64(n); rp < maxRP {
		p = int(rp) / r
	} else {
		p = maxRP / r
	}
	return n, r, p
}

// ParseKeyList reads a list of public keys separated by commas or white space, as
// update.public_keys and serve.update.public_keys hold them.
func ParseKeyList(list string) (Keys, error) {
	return ParseKeys(strings.FieldsFunc(list, func(r rune) bool { return r == ',' || unicode.IsSpace(r) }))
}
