"""Print `name==version` for salt and its whole dependency closure as installed
in the running interpreter's environment (the project venv): the lab builds the
nodes' minion wheels from exactly these pins."""

import re
from importlib import metadata


def closure(root):
    seen, todo = {}, [root]
    while todo:
        name = todo.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen[key] = f"{dist.metadata['Name']}=={dist.version}"
        for req in dist.requires or []:
            if ";" in req and "extra ==" in req.split(";", 1)[1]:
                continue
            todo.append(re.split(r"[ ;<>=!~\[(]", req, maxsplit=1)[0])
    return sorted(seen.values())


if __name__ == "__main__":
    print("\n".join(closure("salt")))
