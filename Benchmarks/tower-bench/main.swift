print("tower-bench: see Benchmarks/README.md")
