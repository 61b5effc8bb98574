package snapshot

import (
	"bufio"
	"bytes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/chacha20poly1305"
)

// SealVersion is the version of the sealed container this package writes
// and the newest it opens.
const SealVersion = 1

// ChunkSize is how much plaintext one sealed chunk holds.
const ChunkSize = 1 << 20

const (
	magic       = "knest-snapshot\n"
	keyIDSize   = 8
	prefixSize  = chacha20poly1305.NonceSizeX - 8
	headerSize  = len(magic) + 1 + keyIDSize + prefixSize
	chunkFinal  = 1
	chunkMiddle = 0
)

// Errors an Opener's reads return, each with its reason.
var (
	ErrNotSnapshot = errors.New("not a knest snapshot")
	ErrWrongKey    = errors.New("sealed with another snapshot key: not a snapshot of this tenant")
	ErrTruncated   = errors.New("truncated: the file ends before its last chunk")
	ErrCorrupt     = errors.New("corrupt: a chunk fails authentication")
)

// Seal returns a writer that seals what is written to it into w; Close
// writes the last chunk (it does not close w). Without Close the file is
// truncated and never opens.
func Seal(w io.Writer, key []byte) (io.WriteCloser, error) {
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, fmt.Errorf("snapshot key: %w", err)
	}
	header := make([]byte, 0, headerSize)
	header = append(header, magic...)
	header = append(header, SealVersion)
	header = append(header, keyID(key)...)
	prefix := make([]byte, prefixSize)
	if _, err := rand.Read(prefix); err != nil {
		return nil, err
	}
	header = append(header, prefix...)
	if _, err := w.Write(header); err != nil {
		return nil, err
	}
	return &sealer{w: w, aead: aead, header: header, buf: make([]byte, 0, ChunkSize)}, nil
}

type sealer struct {
	w      io.Writer
	aead   cipher.AEAD
	header []byte
	buf    []byte
	out    []byte
	n      uint64
	closed bool
}

func (s *sealer) Write(p []byte) (int, error) {
	if s.closed {
		return 0, errors.New("snapshot: write after close")
	}
	written := 0
	for len(p) > 0 {
		if len(s.buf) == ChunkSize {
			if err := s.flush(chunkMiddle); err != nil {
				return written, err
			}
		}
		n := copy(s.buf[len(s.buf):ChunkSize], p)
		s.buf = s.buf[:len(s.buf)+n]
		p = p[n:]
		written += n
	}
	return written, nil
}

func (s *sealer) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	return s.flush(chunkFinal)
}

func (s *sealer) flush(flag byte) error {
	s.out = s.out[:0]
	s.out = append(s.out, flag, 0, 0, 0, 0)
	s.out = s.aead.Seal(s.out, nonce(s.header, s.n), s.buf, aad(s.header, flag))
	binary.BigEndian.PutUint32(s.out[1:5], uint32(len(s.out)-5))
	s.n++
	s.buf = s.buf[:0]
	_, err := s.w.Write(s.out)
	return err
}

func nonce(header []byte, n uint64) []byte {
	nc := make([]byte, chacha20poly1305.NonceSizeX)
	copy(nc, header[headerSize-prefixSize:])
	binary.BigEndian.PutUint64(nc[prefixSize:], n)
	return nc
}

func aad(header []byte, flag byte) []byte {
	return append(bytes.Clone(header), flag)
}

// Open returns a reader of the plaintext sealed in r. Each read returns only
// authenticated data; the reader returns io.EOF only after the last chunk
// authenticated and r ended right after it, so a caller that reads to io.EOF
// has verified the whole file. Any other error is one of this package's
// Err* values, wrapped with where it happened.
func Open(r io.Reader, key []byte) (io.Reader, error) {
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, fmt.Errorf("snapshot key: %w", err)
	}
	br := bufio.NewReaderSize(r, 64<<10)
	header := make([]byte, headerSize)
	if n, err := io.ReadFull(br, header); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%w (%d bytes, shorter than its header)", ErrNotSnapshot, n)
		}
		return nil, err
	}
	if string(header[:len(magic)]) != magic {
		return nil, ErrNotSnapshot
	}
	if v := header[len(magic)]; v > SealVersion {
		return nil, fmt.Errorf("sealed in format %d, newer than this knest reads (%d): restore it with a newer knest", v, SealVersion)
	}
	if !bytes.Equal(header[len(magic)+1:len(magic)+1+keyIDSize], keyID(key)) {
		return nil, ErrWrongKey
	}
	return &opener{r: br, aead: aead, header: header}, nil
}

type opener struct {
	r      *bufio.Reader
	aead   cipher.AEAD
	header []byte
	n      uint64
	plain  []byte
	ct     []byte
	done   bool
	err    error
}

func (o *opener) Read(p []byte) (int, error) {
	for len(o.plain) == 0 {
		if o.err != nil {
			return 0, o.err
		}
		if o.done {
			o.err = o.checkEnd()
			continue
		}
		o.err = o.next()
	}
	n := copy(p, o.plain)
	o.plain = o.plain[n:]
	return n, nil
}

func (o *opener) next() error {
	var head [5]byte
	if _, err := io.ReadFull(o.r, head[:]); err != nil {
		return o.short(err)
	}
	flag, size := head[0], binary.BigEndian.Uint32(head[1:])
	if flag != chunkFinal && flag != chunkMiddle || size > ChunkSize+uint32(o.aead.Overhead()) {
		return fmt.Errorf("%w (chunk %d has a bad header)", ErrCorrupt, o.n)
	}
	if cap(o.ct) < int(size) {
		o.ct = make([]byte, size)
	}
	o.ct = o.ct[:size]
	if _, err := io.ReadFull(o.r, o.ct); err != nil {
		return o.short(err)
	}
	plain, err := o.aead.Open(o.ct[:0], nonce(o.header, o.n), o.ct, aad(o.header, flag))
	if err != nil {
		return fmt.Errorf("%w (chunk %d)", ErrCorrupt, o.n)
	}
	o.n++
	o.plain = plain
	o.done = flag == chunkFinal
	return nil
}

func (o *opener) short(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w (after %d chunks)", ErrTruncated, o.n)
	}
	return err
}

// checkEnd makes sure nothing follows the last chunk.
func (o *opener) checkEnd() error {
	if _, err := o.r.ReadByte(); err == nil {
		return fmt.Errorf("%w (data after the last chunk)", ErrCorrupt)
	} else if !errors.Is(err, io.EOF) {
		return err
	}
	return io.EOF
}
