"""Actions: plan -> confirm -> execute -> track, with the journal and audit in the store."""
