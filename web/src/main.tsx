/** Entry: sign in from the address or the tab's storage, then render the panel. */
import { render } from "preact";
import "uplot/dist/uPlot.min.css";
import "./styles.css";
import { App } from "./app";
import { restoreSession } from "./lib/session";

restoreSession();
render(<App />, document.getElementById("app")!);
