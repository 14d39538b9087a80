"""Container and script templates as ``io.kestra.plugin.scripts.shell.Commands`` tasks.

Argo runs ``command + args`` (or ``command + [script file]``) in the image
and captures stdout as ``outputs.result`` and files as output parameters.
The converted task runs the same argument vector through a short POSIX shell
wrapper that:

1. on the process runner, refuses an image that is not a plain base image
   (alpine, busybox, python, debian, ubuntu): the command runs on the worker,
   which stands in for those images only;
2. runs the argument vector exactly (templated arguments travel in
   environment variables, so no shell quoting can change them);
3. tees stdout into a file and prints Kestra's ``::{"outputs": ...}::`` line
   with ``result`` (stdout), ``exitCode`` and each ``valueFrom.path``
   parameter, JSON-escaped with ``awk`` (present in every base image);
4. exits with the command's code.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

PLAIN_IMAGES = ("alpine", "busybox", "python", "debian", "ubuntu")
# Argo keeps up to 256 KiB of stdout as outputs.result.
RESULT_LIMIT = 256 * 1024
# An artifact travels base64-encoded in one environment variable of the task that
# reads it; Linux caps one at 128 KiB (MAX_ARG_STRLEN).
ARTIFACT_LIMIT = 96 * 1024
_STDOUT = ".argo-stdout"
_RC = ".argo-rc"


def image_repository(image: str) -> str:
    """``python`` for ``docker.io/library/python:3.12@sha256:…``; the repository otherwise."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: len(name) - len(last)] + last.split(":", 1)[0]
    for prefix in ("docker.io/library/", "docker.io/", "library/", "index.docker.io/library/"):
        name = name.removeprefix(prefix)
    return name


def is_plain_image(image: str) -> bool:
    """Whether the process runner may stand in for ``image`` (a plain base image)."""
    return image_repository(image) in PLAIN_IMAGES


def not_plain_message(image: str) -> str:
    """Why the process runner will not run a template using ``image``."""
    return (
        f"image {image} is not a plain base image ({', '.join(PLAIN_IMAGES)}): the process "
        "runner runs the command on the worker, which can stand in for those only; "
        "convert with --runner kubernetes to run it in its image"
    )


@dataclass
class Wrapper:
    """What the shell wrapper of one container or script call does."""

    argv: list[str]  # shell words, already quoted or "$VAR"
    template: str
    image_check: str | None = None  # "static:<message>" or "dynamic" (check $ARGO_IMAGE)
    working_dir: str | None = None
    output_parameters: list[tuple[str, str, str | None]] = field(default_factory=list)
    # (name, path, environment variable holding the packed or raw value, raw, optional)
    input_artifacts: list[tuple[str, str, str, bool, bool]] = field(default_factory=list)
    output_artifacts: list[tuple[str, str, bool]] = field(default_factory=list)
    no_command: bool = False
    soft: bool = False  # exit 0 and let a check task fail the attempt (retry expressions)


def word(text: str) -> str:
    """``text`` as one shell word."""
    return shlex.quote(text)


def commands(wrapper: Wrapper) -> str:
    """The task's ``commands`` template: a comment, the helpers, then its own lines."""
    from controlplane.domain.argo.values import escape_literal  # noqa: PLC0415

    head = escape_literal(f"# Argo template {wrapper.template}")
    return head + "\n{{ vars.argo }}\n" + escape_literal(shell_script(wrapper))


def shell_script(wrapper: Wrapper) -> str:
    """The task's own shell lines (template-free; ``HELPERS`` defines the functions)."""
    lines: list[str] = []
    if wrapper.image_check and wrapper.image_check.startswith("static:"):
        message = wrapper.image_check.removeprefix("static:")
        return "\n".join([*lines, f"argo_refuse {word(message)}"]) + "\n"
    if wrapper.image_check == "dynamic":
        lines.append('argo_plain_image "$ARGO_IMAGE"')
    if wrapper.no_command:
        return (
            "\n".join([*lines, f"argo_refuse {word(_no_command_message(wrapper.template))}"]) + "\n"
        )
    for name, path, variable, raw, optional in wrapper.input_artifacts:
        function = "argo_raw" if raw else "argo_unpack"
        flag = " optional" if optional else ""
        lines.append(f'{function} {word(name)} {word(path)} "${variable}"{flag}')
    if wrapper.working_dir:
        lines.append(f"cd {word(wrapper.working_dir)} || exit 1")
    lines.append("argo_run " + " ".join(wrapper.argv))
    for name, path, default in wrapper.output_parameters:
        extra = f" {word(default)}" if default is not None else ""
        lines.append(f"argo_param {word(name)} {word(path)}{extra}")
    for name, path, optional in wrapper.output_artifacts:
        lines.append(f"argo_artifact {word(name)} {word(path)}" + (" optional" if optional else ""))
    lines.append("argo_finish soft" if wrapper.soft else "argo_finish")
    return "\n".join(lines) + "\n"


# JSON string of the input, byte by byte: backslash, quote, tab, CR and newlines
# escaped, other control characters dropped. No gsub: its replacement escapes
# differ between awk implementations (busybox, mawk, gawk).
_AWK_JSON = (
    'BEGIN { ORS = ""; printf "\\""; '
    'ctl = "\\001\\002\\003\\004\\005\\006\\007\\010\\013\\014\\016\\017\\020\\021'
    '\\022\\023\\024\\025\\026\\027\\030\\031\\032\\033\\034\\035\\036\\037" } '
    '{ if (NR > 1) printf "\\\\n"; n = length($0); '
    "for (i = 1; i <= n; i++) { c = substr($0, i, 1); "
    'if (c == "\\\\") printf "\\\\\\\\"; else if (c == "\\"") printf "\\\\\\""; '
    'else if (c == "\\t") printf "\\\\t"; else if (c == "\\r") printf "\\\\r"; '
    'else if (!index(ctl, c)) printf "%s", c } } '
    'END { printf "\\"" }'
)

# Shell functions every converted container or script task starts with (the
# flow's ``variables.argo``). They hold no "{{", "{%" or "{#", so the text
# passes through Pebble unchanged; @NAME@ marks are filled in below.
_HELPERS = r"""# Flowplane's Argo wrapper: run argv, keep stdout, report Argo's outputs.
argo_json() { head -c @RESULT_LIMIT@ "$1" | LC_ALL=C awk '@AWK_JSON@'; }
argo_refuse() { echo "$1" >&2; exit 1; }
argo_plain_image() {
  argo_repo="${1%%@*}"
  case "${argo_repo##*/}" in *:*) argo_repo="${argo_repo%:*}";; esac
  argo_repo="${argo_repo#docker.io/}"; argo_repo="${argo_repo#library/}"
  case "$argo_repo" in @PLAIN@) ;;
  *) argo_refuse "image $1 is not a plain base image (@PLAIN_LIST@): the process runner \
runs the command on the worker, which can stand in for those only; convert with \
--runner kubernetes to run it in its image";;
  esac
}
argo_run() {
  argo_t0=$(date +%s)
  { "$@"; echo $? > .argo-rc; } | tee .argo-stdout
  argo_rc=$(cat .argo-rc 2>/dev/null || echo 1)
  argo_params=''; argo_artifacts=''
}
argo_place() {
  mkdir -p "$(dirname "$2")" 2>/dev/null
  mv "$1" "$2" 2>/dev/null || argo_refuse "cannot write $2: on the process runner a \
task may write only /tmp and its working directory"
}
argo_unpack() {
  if [ -z "$3" ]; then
    [ -n "$4" ] && return 0
    argo_refuse "input artifact $1 has no value"
  fi
  argo_d=$(mktemp -d)
  printf '%s' "$3" | base64 -d | gzip -dc | tar -x -C "$argo_d" \
    || argo_refuse "input artifact $1: not an archive"
  for argo_e in "$argo_d"/* "$argo_d"/.[!.]*; do
    [ -e "$argo_e" ] && argo_place "$argo_e" "$2"
  done
}
argo_raw() {
  argo_d=$(mktemp -d); printf '%s' "$3" > "$argo_d/raw"; argo_place "$argo_d/raw" "$2"
}
argo_artifact() {
  if [ ! -e "$2" ]; then
    [ -n "$3" ] && return 0
    echo "output artifact $1: $2 was not written" >&2; argo_rc=1; return 0
  fi
  argo_a=$(tar -c -C "$(dirname "$2")" "$(basename "$2")" | gzip -c | base64 | tr -d '\n')
  if [ "$(printf '%s' "$argo_a" | wc -c)" -gt @ARTIFACT_LIMIT@ ]; then
    echo "output artifact $1 is larger than @ARTIFACT_KIB@ KiB packed: Flowplane passes \
artifacts inline" >&2; argo_rc=1; return 0
  fi
  argo_artifacts="$argo_artifacts${argo_artifacts:+,}\"$1\":\"$argo_a\""
}
argo_param() {
  if [ -f "$2" ]; then argo_v=$(argo_json "$2")
  elif [ $# -ge 3 ]; then argo_v=$(printf '%s' "$3" | argo_json /dev/stdin)
  else echo "output parameter $1: $2 was not written" >&2; argo_v='""'; argo_rc=1; fi
  argo_params="$argo_params${argo_params:+,}\"$1\":$argo_v"
}
argo_finish() {
  # The outputs line must start a line of its own.
  if [ -n "$(tail -c 1 .argo-stdout)" ]; then echo; fi
  printf '::{"outputs":{"result":%s,"exitCode":%s,"duration":%s,' \
    "$(argo_json .argo-stdout)" "$argo_rc" "$(($(date +%s) - argo_t0))"
  printf '"parameters":{'"%s"'},"artifacts":{'"%s"'}}}::\n' "$argo_params" "$argo_artifacts"
  # soft: a retryStrategy.expression reads the exit code; a Fail task fails the attempt.
  [ "$1" = soft ] && exit 0
  exit "$argo_rc"
}
"""
HELPERS = (
    _HELPERS.replace("@RESULT_LIMIT@", str(RESULT_LIMIT))
    .replace("@AWK_JSON@", _AWK_JSON)
    .replace("@PLAIN@", "|".join(PLAIN_IMAGES))
    .replace("@PLAIN_LIST@", ", ".join(PLAIN_IMAGES))
    .replace("@ARTIFACT_LIMIT@", str(ARTIFACT_LIMIT))
    .replace("@ARTIFACT_KIB@", str(ARTIFACT_LIMIT // 1024))
)


def json_key(name: str) -> str:
    """A JSON object key for ``name`` (Argo names hold no quote or backslash)."""
    return '"' + re.sub(r'(["\\])', r"\\\1", name) + '"'


def _no_command_message(template: str) -> str:
    return (
        f"template {template} gives no command: Argo would run the image's entrypoint, "
        "which a Flowplane runner cannot know; give container.command"
    )
