"""Flow graphs of dialogues: DOT, Mermaid, SVG/PNG through Graphviz, and a call's path as text.

Typical use::

    graph = build_graph(program)
    trace = trace_path(graph, program, record.path, record.inputs, record.ended_by)  # optional
    text = render_dot(graph, trace)            # or render_mermaid(graph, trace)
    svg = render_image(text, "svg")            # needs Graphviz's dot
    print(render_path_text(program, record))   # main --2--> login --if pin == "1234"--> account ...
    print(render_trace_text(trace))            # the same, from a trace already made
"""

from autocall.graph.dot import IMAGE_FORMATS, render_dot, render_image
from autocall.graph.mermaid import render_mermaid
from autocall.graph.model import Edge, Graph, Node, build_graph
from autocall.graph.path import Step, Trace, render_path_text, render_trace_text, trace_path
from autocall.graph.text import expression_text, key_text, template_text

__all__ = ["IMAGE_FORMATS", "Edge", "Graph", "Node", "Step", "Trace", "build_graph", "expression_text",
           "key_text", "render_dot", "render_image", "render_mermaid", "render_path_text", "render_trace_text",
           "template_text", "trace_path"]
