package gate

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/cis490/cis490/internal/protocol"
)

// DefaultGitDepth is used when NewGitSource gets a depth that is not positive.
const DefaultGitDepth = 100

type fileSource struct{ path string }

// NewFileSource reads one commit per line from path; '#' starts a comment.
func NewFileSource(path string) Source { return &fileSource{path: path} }

func (f *fileSource) Name() string { return "file:" + f.path }

func (f *fileSource) Load(context.Context) ([]string, error) {
	file, err := os.Open(f.path)
	if err != nil {
		return nil, err
	}
	defer file.Close()

	var list []string
	sc := bufio.NewScanner(file)
	for n := 1; sc.Scan(); n++ {
		text, _, _ := strings.Cut(sc.Text(), "#")
		text = strings.TrimSpace(text)
		if text == "" {
			continue
		}
		c, ok := protocol.NormalizeCommit(text)
		if !ok {
			return nil, fmt.Errorf("%s:%d: not a commit (7 to 40 hex digits): %q", f.path, n, text)
		}
		list = append(list, c)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", f.path, err)
	}
	return list, nil
}

type gitSource struct {
	dir, ref string
	depth    int
}

// NewGitSource lists the depth newest commits reachable from ref in the repository at
// gitDir, using the git binary. An empty ref means HEAD.
func NewGitSource(gitDir, ref string, depth int) Source {
	if ref == "" {
		ref = "HEAD"
	}
	if depth <= 0 {
		depth = DefaultGitDepth
	}
	return &gitSource{dir: gitDir, ref: ref, depth: depth}
}

func (g *gitSource) Name() string { return "git:" + g.dir + "@" + g.ref }

func (g *gitSource) Load(ctx context.Context) ([]string, error) {
	// A ref from the config must never be read by git as an option.
	if strings.HasPrefix(g.ref, "-") {
		return nil, fmt.Errorf("git ref %q must not start with '-'", g.ref)
	}
	cmd := exec.CommandContext(ctx, "git", "-C", g.dir, "rev-list",
		"--max-count="+strconv.Itoa(g.depth), g.ref, "--")
	out, err := cmd.Output()
	if err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			if msg := strings.TrimSpace(string(exitErr.Stderr)); msg != "" {
				return nil, fmt.Errorf("git rev-list %s in %s: %w: %s", g.ref, g.dir, err, msg)
			}
		}
		return nil, fmt.Errorf("git rev-list %s in %s: %w", g.ref, g.dir, err)
	}
	return strings.Fields(string(out)), nil
}
