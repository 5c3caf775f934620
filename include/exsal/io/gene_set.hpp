#ifndef EXSAL_IO_GENE_SET_HPP
#define EXSAL_IO_GENE_SET_HPP

#include <string>
#include <vector>

namespace exsal {

// One gene set, as a GMT line holds it: name, description, member symbols (unique, upper case).
struct GeneSet {
    std::string name;
    std::string description;
    std::vector<std::string> genes;
};

using GeneSetCollection = std::vector<GeneSet>;

} // namespace exsal

#endif // EXSAL_IO_GENE_SET_HPP
