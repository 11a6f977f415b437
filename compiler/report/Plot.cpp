// Graphviz rendering of the layer graph (see Plot.h).
#include "compiler/report/Plot.h"

#include "compiler/ir/KerasTopology.h"
#include "compiler/ir/OpRegistry.h"
#include "compiler/report/Summary.h"
#include "compiler/support/AtomicFile.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>
#include <sstream>
#include <sys/wait.h>
#include <unistd.h>

namespace fgc {

namespace {

// Record labels treat these characters as structure; layer names must not.
std::string escapeRecord(const std::string &s) {
  std::string out;
  for (char c : s) {
    if (std::strchr("{}|<>\"\\", c))
      out += '\\';
    out += c;
  }
  return out;
}

std::string inputShapeLabel(const Layer &l) {
  if (l.calls.empty())
    return "?";
  if (l.className == "InputLayer")
    return kerasOutputShape(l);
  std::string first;
  for (size_t c = 0; c < l.calls.size(); ++c) {
    const Op &op = *l.calls[c];
    std::string s;
    if (op.inputs.size() == 1) {
      s = shapeToString(op.inputs[0]->type.shape);
    } else {
      s = "[";
      for (size_t i = 0; i < op.inputs.size(); ++i)
        s += (i ? ", " : "") + shapeToString(op.inputs[i]->type.shape);
      s += "]";
    }
    if (c == 0)
      first = s;
    else if (s != first)
      return "multiple";
  }
  return first;
}

class DotWriter {
public:
  explicit DotWriter(const PlotOptions &o) : opts_(o) {}

  std::string write(const Graph &g) {
    out_ << "digraph G {\n";
    out_ << fmt::format("  graph [rankdir={}, concentrate=true, dpi={}, fontname=\"Helvetica\"];\n", opts_.rankdir,
                        opts_.dpi);
    out_ << "  node [shape=record, fontname=\"Helvetica\", fontsize=12];\n";
    out_ << "  edge [fontname=\"Helvetica\"];\n";
    addGraph(g, "  ");
    for (const auto &e : edges_)
      out_ << "  " << e << "\n";
    out_ << "}\n";
    return out_.str();
  }

private:
  const PlotOptions &opts_;
  std::ostringstream out_;
  std::vector<std::string> edges_;
  std::set<std::string> edgeSet_;
  std::map<const Layer *, std::string> ids_;
  int clusters_ = 0;

  std::string id(const Layer *l) {
    auto it = ids_.find(l);
    if (it != ids_.end())
      return it->second;
    std::string s = fmt::format("layer{}", ids_.size());
    ids_[l] = s;
    return s;
  }

  // Whether a layer is drawn as a cluster of its layers: nested models with expand_nested. A
  // custom layer's traced body is fgc's business: Keras draws a subclassed layer as one box.
  bool expanded(const Layer *l) const {
    return opts_.expandNested && l->subgraph && !(l->def && l->def->custom);
  }

  // Where edges into / out of a layer attach: a nested model drawn expanded connects through
  // its input and output layers.
  std::string entry(const Layer *l, size_t inputIndex) {
    if (expanded(l) && inputIndex < l->subgraph->inputs.size())
      return entry(l->subgraph->inputs[inputIndex]->producer->layer, 0);
    return id(l);
  }
  std::string exit(const Value *v) {
    const Layer *l = v->producer->layer;
    if (expanded(l))
      return exit(l->subgraph->outputs[size_t(v->index)]);
    return id(l);
  }

  void addEdge(const std::string &from, const std::string &to) {
    std::string e = from + " -> " + to + ";";
    if (edgeSet_.insert(e).second)
      edges_.push_back(e);
  }

  void addGraph(const Graph &g, const std::string &indent) {
    KerasTopology topo = kerasTopology(g);
    std::set<const Op *> relevant(topo.networkOps.begin(), topo.networkOps.end());
    for (const Layer *l : topo.layers) {
      if (expanded(l)) {
        out_ << indent << "subgraph cluster_" << clusters_++ << " {\n";
        out_ << indent << "  label=\"" << escapeRecord(l->name) << ": " << l->className << "\";\n";
        out_ << indent << "  style=rounded;\n";
        addGraph(*l->subgraph, indent + "  ");
        out_ << indent << "}\n";
        continue;
      }
      std::string label = escapeRecord(l->name) + ": " + l->className;
      if (opts_.showDtype && !l->calls.empty() && !l->calls[0]->outputs.empty())
        label += "|" + dtypeName(l->calls[0]->outputs[0]->type.dtype);
      if (opts_.showShapes)
        label = fmt::format("{}\\n|{{input:|output:}}|{{{{{}}}|{{{}}}}}", label,
                            escapeRecord(inputShapeLabel(*l)), escapeRecord(kerasOutputShape(*l)));
      out_ << indent << id(l) << " [label=\"" << label << "\"];\n";
    }
    for (const Layer *l : topo.layers)
      for (const Op *op : l->calls) {
        if (!relevant.count(op))
          continue;
        for (size_t i = 0; i < op->inputs.size(); ++i)
          addEdge(exit(op->inputs[i]), entry(l, i));
      }
  }
};

// Runs `dot -T<format> -o <out>` with the DOT text on standard input.
Status renderWithDot(const std::string &dotText, const std::string &format,
                     const std::string &outPath) {
  int pipeFd[2];
  if (::pipe(pipeFd) != 0)
    return Error::format("{}: cannot run Graphviz: {}", outPath, std::strerror(errno));
  pid_t pid = ::fork();
  if (pid < 0)
    return Error::format("{}: cannot run Graphviz: {}", outPath, std::strerror(errno));
  if (pid == 0) {
    ::dup2(pipeFd[0], 0);
    ::close(pipeFd[0]);
    ::close(pipeFd[1]);
    std::string t = "-T" + format, o = "-o" + outPath;
    ::execlp("dot", "dot", t.c_str(), o.c_str(), static_cast<char *>(nullptr));
    std::_Exit(127);
  }
  ::close(pipeFd[0]);
  const char *p = dotText.data();
  size_t left = dotText.size();
  while (left > 0) {
    ssize_t n = ::write(pipeFd[1], p, left);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    p += n;
    left -= size_t(n);
  }
  ::close(pipeFd[1]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
    return Error::format("{}: Graphviz's `dot` program was not found; install the graphviz "
                         "package (scripts/setup does) or write a .dot file",
                         outPath);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return Error::format("{}: Graphviz `dot -T{}` failed", outPath, format);
  return Status::ok();
}

std::string extensionOf(const std::string &path) {
  auto dot = path.find_last_of('.');
  auto slash = path.find_last_of('/');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash))
    return "";
  return path.substr(dot + 1);
}

} // namespace

std::string modelToDot(const Graph &graph, const PlotOptions &options) {
  return DotWriter(options).write(graph);
}

Status plotModel(const Graph &graph, const std::string &path, const PlotOptions &options) {
  std::string ext = extensionOf(path);
  std::string text = modelToDot(graph, options);
  if (ext == "dot" || ext == "gv")
    return writeFileAtomic(path, text);
  if (ext != "png" && ext != "svg" && ext != "pdf")
    return Error::format("{}: unsupported plot format '{}' (use .png, .svg, .pdf or .dot)", path,
                         ext);
  // Render to a temporary file beside the target, then rename: no half-written plots.
  std::string tmpPath = path + ".tmp." + std::to_string(::getpid()) + "." + ext;
  Status s = renderWithDot(text, ext, tmpPath);
  if (!s) {
    std::remove(tmpPath.c_str());
    return s;
  }
  if (std::rename(tmpPath.c_str(), path.c_str()) != 0) {
    std::remove(tmpPath.c_str());
    return Error::format("{}: cannot write: {}", path, std::strerror(errno));
  }
  return Status::ok();
}

} // namespace fgc
