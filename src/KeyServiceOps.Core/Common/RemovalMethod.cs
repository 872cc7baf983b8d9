namespace KeyServiceOps.Core
{
    /// <summary>
    /// How a target leaves the rotation. Delete (the runbook's step): the row goes, a re-add gets a new id.
    /// Drain: weight 0, the row and its tags stay (in 2.x a single-target GET then answers 404). MarkUnhealthy:
    /// Kong's health state only (no database write, so no drift with declarative config; the hash ring keeps its
    /// layout), needs a health checker, not served on a control plane or DB-less, and undone by Kong's own active
    /// checks once the probe passes.
    /// </summary>
    public enum RemovalMethod { Delete, Drain, MarkUnhealthy }
}
